package ota

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/podboot/podboot/agent/ota/bundle"
	"github.com/podboot/podboot/agent/ota/source"
	"github.com/podboot/podboot/agent/ota/trial"
	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/internal/version"
)

// Target is what the controller updates: the board's pods. It is the only
// part of the controller that knows what a generation holds, so the state
// machine (agent/ota/trial) and the bundle format stay the same for a
// later whole-firmware update.
type Target interface {
	// Check says why the generation unpacked in dir cannot run beside
	// the board's own objects (a name both define, a manifest error);
	// nil when it can.
	Check(dir string) error
	// Import imports the generation's image archives (dir/images) so its
	// pods find their images before they start.
	Import(ctx context.Context, dir string) error
	// Run makes the generation in dir (dir/pods) the fleet's pods, as a
	// whole; gen 0 (dir "") is none.
	Run(gen uint64, dir string) error
	// Health is the health of the fleet's pods that Run last set.
	Health() []PodHealth
}

// Config is what the controller needs.
type Config struct {
	// Dir is <flash>/ota.
	Dir    string
	Device device.OTA
	Target Target
	// FS is the file system the state machine writes through; nil is the
	// real one.
	FS trial.FS
	// Now is the wall clock (statement expiry, trial records).
	Now func() time.Time
	// ClockTrusted reports whether Now is known to be right (NTP synced):
	// expiry is only checked then, so a board that boots in 1970 is not
	// bricked by its own clock.
	ClockTrusted func() bool
	// Event records an event on the node (Normal or Warning).
	Event func(eventType, reason, message string)
	// Condition sets the node's OTARolledBack condition.
	Condition func(rolledBack bool, reason, message string)
	// Tick is how often the health gate looks at the pods (default 1 s).
	Tick time.Duration
	// Rand is the jitter's randomness in [0, 1) (default math/rand).
	Rand    func() float64
	Metrics *Metrics
	Log     *slog.Logger
}

// Controller takes bundles (pushed, or polled from a registry), tries
// each new generation under the health gate, and commits it or rolls it
// back. Its methods are safe for concurrent use.
type Controller struct {
	cfg     Config
	machine *trial.Machine
	keys    []ed25519.PublicKey // device.yaml's, parsed

	mu sync.Mutex
	// gate judges the trial in progress; nil when none runs.
	gate *gate
	// reason is the last refusal's or rollback's message.
	reason string
	// seen is the last polled manifest's digest and whether it was dealt
	// with (applied or refused): the same refused bundle is not checked,
	// and reported, every poll.
	seen string
	// sourceDown is whether the last poll could not reach the source.
	sourceDown bool
}

// New opens the state on the flash, recovering from whatever a power cut
// left, and returns a controller that has not started anything yet.
func New(cfg Config) (*Controller, error) {
	if cfg.FS == nil {
		cfg.FS = trial.OSFS()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockTrusted == nil {
		cfg.ClockTrusted = func() bool { return false }
	}
	if cfg.Event == nil {
		cfg.Event = func(string, string, string) {}
	}
	if cfg.Condition == nil {
		cfg.Condition = func(bool, string, string) {}
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg}
	for i, line := range cfg.Device.Keys {
		k, err := bundle.ParsePublicKey(line)
		if err != nil {
			// One bad key does not disable the others.
			cfg.Log.Error("device.yaml ota.keys: key ignored", "index", i, "err", err)
			continue
		}
		c.keys = append(c.keys, k)
	}
	m, err := trial.Open(cfg.FS, cfg.Dir, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("open the OTA state in %s: %w", cfg.Dir, err)
	}
	c.machine = m
	c.reason = m.State().Reason
	c.removeIncoming()
	return c, nil
}

// Boot starts the generation the state says runs: a trial in progress
// counts one more attempt first (durably, before its pods start) and is
// rolled back instead when it has had its attempts. It returns the
// generation and its directory ("" for none) for the boot's image import.
func (c *Controller) Boot(ctx context.Context) (uint64, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.machine.State()
	if st.Trying != 0 {
		attempt, err := c.machine.StartAttempt()
		switch {
		case errors.Is(err, trial.ErrAttemptsExhausted):
			msg := fmt.Sprintf("generation %d rolled back to generation %d: it was started %d times without becoming healthy", st.Trying, st.Committed, trial.MaxAttempts)
			c.rolledBack(st.Trying, msg)
		case err != nil:
			return 0, "", fmt.Errorf("count the start of generation %d's trial: %w", st.Trying, err)
		default:
			c.startGate()
			c.cfg.Event("Normal", "OTATrying", fmt.Sprintf("trying generation %d again after a restart (attempt %d of %d)", st.Trying, attempt, trial.MaxAttempts))
		}
	}
	gen, dir := c.running()
	if err := c.cfg.Target.Run(gen, dir); err != nil {
		return gen, dir, fmt.Errorf("run generation %d: %w", gen, err)
	}
	c.cfg.Metrics.set(c.machine.State())
	return gen, dir, nil
}

// running is the generation that runs and its directory.
func (c *Controller) running() (uint64, string) {
	gen := c.machine.State().Running()
	if gen == 0 {
		return 0, ""
	}
	return gen, c.machine.GenerationDir(gen)
}

func (c *Controller) startGate() {
	c.gate = newGate(time.Now(), c.cfg.Device.Deadline(), c.cfg.Device.Stable())
}

// Run watches the trial's health and polls the registry until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	var poll <-chan time.Time
	var pollTimer *time.Timer
	var src source.Source
	if spec := c.cfg.Device.Source; spec != "" {
		var err error
		if src, err = source.New(spec, c.cfg.Device.Insecure, filepath.Join(c.cfg.Dir, "downloads")); err != nil {
			c.cfg.Log.Error("OTA source ignored: bundles come only through the API", "err", err)
		}
	}
	if src != nil {
		// The first look comes soon after boot, jittered so a fleet that
		// powers up together does not ask at once.
		pollTimer = time.NewTimer(time.Duration(c.cfg.Rand() * float64(min(c.cfg.Device.Poll(), 10*time.Second))))
		defer pollTimer.Stop()
		poll = pollTimer.C
	}
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.judge()
		case <-poll:
			c.pollOnce(ctx, src)
			pollTimer.Reset(source.Jitter(c.cfg.Device.Poll(), c.cfg.Rand))
		}
	}
}

// judge looks at the trial's pods once and commits or rolls back.
func (c *Controller) judge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.machine.State()
	if st.Trying == 0 || c.gate == nil {
		return
	}
	v, why := c.gate.observe(time.Now(), c.cfg.Target.Health())
	switch v {
	case healthy:
		c.commit(st)
	case unhealthy:
		c.rollback(st, fmt.Sprintf("generation %d rolled back to generation %d: %s", st.Trying, st.Committed, why))
	}
}

func (c *Controller) commit(st trial.State) {
	if next, threshold, ok := c.nextKeys(st.Trying); ok {
		c.machine.SetNextKeys(next, threshold)
	}
	if err := c.machine.Commit(); err != nil {
		// The trial goes on; the next look tries again.
		c.cfg.Log.Error("commit OTA generation", "generation", st.Trying, "err", err)
		return
	}
	c.gate = nil
	c.reason = ""
	msg := fmt.Sprintf("generation %d committed: every pod Ready and no restart for %s", st.Trying, c.cfg.Device.Stable())
	c.cfg.Log.Info(msg)
	c.cfg.Event("Normal", "OTACommitted", msg)
	c.cfg.Condition(false, "Committed", msg)
	c.cfg.Metrics.committed(c.machine.State())
}

// nextKeys reads a key rotation from the generation's statement (verified
// when the bundle was taken).
func (c *Controller) nextKeys(gen uint64) ([]string, int, bool) {
	b, err := os.ReadFile(filepath.Join(c.machine.GenerationDir(gen), "statement.json"))
	if err != nil {
		c.cfg.Log.Error("read the statement of the generation on trial", "generation", gen, "err", err)
		return nil, 0, false
	}
	var env bundle.Envelope
	var s bundle.Statement
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, 0, false
	}
	if err := json.Unmarshal(env.Payload, &s); err != nil || len(s.NextKeys) == 0 {
		return nil, 0, false
	}
	return s.NextKeys, s.NextThreshold, true
}

// rollback ends the trial in st: the committed generation runs again and
// the tried one is never retried.
func (c *Controller) rollback(st trial.State, msg string) {
	if err := c.machine.Rollback(msg); err != nil {
		c.cfg.Log.Error("roll back OTA generation", "generation", st.Trying, "err", err)
		return
	}
	c.rolledBack(st.Trying, msg)
	gen, dir := c.running()
	if err := c.cfg.Target.Run(gen, dir); err != nil {
		c.cfg.Log.Error("run the generation rolled back to", "generation", gen, "err", err)
	}
}

func (c *Controller) rolledBack(failed uint64, msg string) {
	c.gate = nil
	c.reason = msg
	c.cfg.Log.Warn(msg)
	c.cfg.Event("Warning", "OTARolledBack", msg)
	c.cfg.Condition(true, "RolledBack", msg)
	c.cfg.Metrics.rolledBack(c.machine.State())
}

// Push takes a bundle (an OCI layout tar) through the same verification as
// a polled one. It returns once the new generation's trial has begun; the
// health gate decides later. A refused bundle is a *RefusedError.
func (c *Controller) Push(ctx context.Context, r io.Reader) (Status, error) {
	f, err := os.CreateTemp(c.cfg.Dir, incomingPrefix+"*.tar")
	if err != nil {
		return c.Status(), fmt.Errorf("receive the bundle: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return c.Status(), fmt.Errorf("receive the bundle: %w", err)
	}
	store, desc, err := bundle.OpenTar(ctx, f.Name())
	if err != nil {
		var r *bundle.Refusal
		if !errors.As(err, &r) {
			err = &bundle.Refusal{Reason: bundle.ReasonMalformed, Message: "bundle refused: " + err.Error()}
		}
		err = c.refuse(0, err)
		return c.Status(), err
	}
	if closer, ok := store.(io.Closer); ok {
		defer closer.Close()
	}
	err = c.take(ctx, store, desc, "pushed", false)
	return c.Status(), err
}

// incomingPrefix names a pushed bundle while it is received; New removes
// any a power cut left.
const incomingPrefix = ".incoming-"

func (c *Controller) removeIncoming() {
	matches, _ := filepath.Glob(filepath.Join(c.cfg.Dir, incomingPrefix+"*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// take verifies the bundle at desc, stages its generation, imports its
// images and begins its trial.
func (c *Controller) take(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, via string, polled bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.machine.State()
	if st.Trying != 0 {
		return &ConflictError{fmt.Sprintf("generation %d is on trial: wait until it is committed or rolled back (podctl ota status), or roll it back (podctl ota rollback)", st.Trying)}
	}
	b, err := bundle.Open(ctx, store, desc, c.policy(st))
	var r *bundle.Refusal
	if polled && errors.As(err, &r) && r.Reason == bundle.ReasonReplay {
		// The tag still names a generation this board has: nothing new.
		c.cfg.Log.Debug("OTA source has nothing newer", "err", err)
		return err
	}
	if err != nil {
		return c.refuse(0, err)
	}
	gen := b.Statement.Generation
	err = c.machine.Stage(gen, func(w trial.FS, dir string) error {
		if err := b.Unpack(ctx, w, dir); err != nil {
			return err
		}
		return c.cfg.Target.Check(dir)
	})
	if err != nil {
		return c.refuse(gen, err)
	}
	dir := c.machine.GenerationDir(gen)
	// Images go in before the switch: the new pods must not wait on, or
	// fail for, an image the bundle carries.
	if err := c.cfg.Target.Import(ctx, dir); err != nil {
		return c.refuse(gen, fmt.Errorf("import the images of generation %d: %w", gen, err))
	}
	if err := c.machine.Begin(gen); err != nil {
		return fmt.Errorf("begin the trial of generation %d: %w", gen, err)
	}
	attempt, err := c.machine.StartAttempt()
	if err != nil {
		return fmt.Errorf("count the start of generation %d's trial: %w", gen, err)
	}
	if err := c.cfg.Target.Run(gen, dir); err != nil {
		c.rollback(c.machine.State(), fmt.Sprintf("generation %d rolled back to generation %d: its pods could not be run: %v", gen, st.Committed, err))
		return fmt.Errorf("run generation %d: %w", gen, err)
	}
	c.startGate()
	c.reason = ""
	msg := fmt.Sprintf("trying generation %d (%s; attempt %d of %d): every pod must be Ready within %s and stay so for %s", gen, via, attempt, trial.MaxAttempts, c.cfg.Device.Deadline(), c.cfg.Device.Stable())
	c.cfg.Log.Info(msg)
	c.cfg.Event("Normal", "OTATrying", msg)
	c.cfg.Metrics.set(c.machine.State())
	return nil
}

// policy is what a bundle must satisfy now.
func (c *Controller) policy(st trial.State) bundle.Policy {
	p := bundle.Policy{
		Keys:         c.keys,
		Threshold:    c.cfg.Device.MinSigners(),
		Channel:      c.cfg.Device.Channel,
		Committed:    st.HighWater,
		AgentVersion: version.Version,
		Now:          c.cfg.Now(),
		ClockTrusted: c.cfg.ClockTrusted(),
	}
	if len(st.Keys) > 0 {
		// A committed statement rotated the keys: they replace device.yaml's.
		p.Keys = p.Keys[:0:0]
		for _, line := range st.Keys {
			if k, err := bundle.ParsePublicKey(line); err == nil {
				p.Keys = append(p.Keys, k)
			}
		}
		p.Threshold = max(st.Threshold, 1)
	}
	for _, f := range st.Failed {
		p.Failed = append(p.Failed, f.Generation)
	}
	return p
}

// refuse reports a refused bundle: the status's reason, a Warning event,
// the metric, and a *RefusedError for the caller.
func (c *Controller) refuse(gen uint64, err error) error {
	reason, msg := "Refused", err.Error()
	var r *bundle.Refusal
	var coll *CollisionError
	var invalid *InvalidManifestError
	switch {
	case errors.As(err, &r):
		// Whatever wrapped it (staging), the refusal says it all.
		reason, msg = r.Reason, r.Message
	case errors.As(err, &coll):
		reason, msg = ReasonCollision, fmt.Sprintf("bundle generation %d refused: %s", gen, coll.Message)
	case errors.As(err, &invalid):
		reason, msg = ReasonInvalidManifest, fmt.Sprintf("bundle generation %d refused: %s", gen, invalid.Message)
	case gen != 0:
		msg = fmt.Sprintf("bundle generation %d refused: %s", gen, msg)
	default:
		msg = "bundle refused: " + msg
	}
	if r == nil && errors.Is(err, source.ErrTruncated) {
		reason = bundle.ReasonTruncated
	}
	c.reason = msg
	c.cfg.Log.Warn("OTA bundle refused", "reason", reason, "err", msg)
	c.cfg.Event("Warning", "OTARefused", msg)
	c.cfg.Metrics.refused(reason)
	return &RefusedError{Reason: reason, Message: msg, Err: err}
}

// Rollback is the operator's: a trial in progress ends at once, or the
// committed generation gives way to the one committed before it.
func (c *Controller) Rollback(ctx context.Context) (Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.machine.State()
	if st.Trying != 0 {
		c.rollback(st, fmt.Sprintf("generation %d rolled back to generation %d by the operator", st.Trying, st.Committed))
		return c.statusLocked(), nil
	}
	if st.Previous == 0 {
		return c.statusLocked(), &ConflictError{fmt.Sprintf("no previous committed generation to roll back to (generation %d is the only one)", st.Committed)}
	}
	msg := fmt.Sprintf("generation %d rolled back to generation %d by the operator", st.Committed, st.Previous)
	if err := c.machine.Rollback(msg); err != nil {
		if errors.Is(err, trial.ErrNoPrevious) {
			return c.statusLocked(), &ConflictError{err.Error()}
		}
		return c.statusLocked(), fmt.Errorf("roll back generation %d: %w", st.Committed, err)
	}
	c.rolledBack(st.Committed, msg)
	gen, dir := c.running()
	if err := c.cfg.Target.Run(gen, dir); err != nil {
		return c.statusLocked(), fmt.Errorf("run generation %d: %w", gen, err)
	}
	return c.statusLocked(), nil
}
