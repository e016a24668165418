package trial

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of the transitions; each is wrapped with the generation.
var (
	ErrAttemptsExhausted = fmt.Errorf("the trial was started %d times without becoming healthy", MaxAttempts)
	ErrNoPrevious        = errors.New("no previous committed generation to roll back to")
	ErrTrialRunning      = errors.New("a trial is running")
	ErrNoTrial           = errors.New("no trial is running")
	ErrNotNewer          = errors.New("not newer than the highest committed generation")
	ErrFailedBefore      = errors.New("failed before")
	ErrNotStaged         = errors.New("not staged")
)

// The names in the OTA directory.
const (
	stateName   = "state.json"
	copyName    = "state.json.copy" // a second copy of state.json, written after it
	tmpSuffix   = ".tmp"
	currentName = "current"
	genName     = "gen"
)

// Machine is the OTA state of one directory. Its methods are safe for
// concurrent use. After a method returns an error other than a refusal the
// flash may hold the step before or after it: Open again to recover.
type Machine struct {
	fsys FS
	dir  string
	now  func() time.Time

	// op serializes the transitions; Stage holds it while its fill runs,
	// which may take minutes.
	op sync.Mutex
	// mu guards state, so State does not wait for a transition. Only a
	// holder of op changes state (through setState), so a transition
	// reads it without mu.
	mu    sync.Mutex
	state State
}

// Open opens (creating it if missing) the OTA directory dir and recovers
// from whatever a crash left: it removes half-staged generations
// (gen/*.tmp) and temporary files, makes `current` point at
// State().Running(), and removes the generation directories other than
// Committed, Previous and Trying. now is the clock of TrialStart and
// Failure.At (nil: time.Now).
func Open(fsys FS, dir string, now func() time.Time) (*Machine, error) {
	if now == nil {
		now = time.Now
	}
	m := &Machine{fsys: fsys, dir: dir, now: now}
	if err := m.recover(); err != nil {
		return nil, fmt.Errorf("recover the OTA state in %s: %w", dir, err)
	}
	return m, nil
}

// State is the current state (a copy).
func (m *Machine) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state
	s.Failed = slices.Clone(s.Failed)
	s.Keys = slices.Clone(s.Keys)
	s.NextKeys = slices.Clone(s.NextKeys)
	return s
}

// GenerationDir is the directory of generation gen: dir/gen/%020d.
func (m *Machine) GenerationDir(gen uint64) string {
	return filepath.Join(m.dir, genName, genBase(gen))
}

func genBase(gen uint64) string { return fmt.Sprintf("%020d", gen) }

// genTarget is what `current` holds: relative, so the flash may be
// mounted anywhere.
func genTarget(gen uint64) string { return genName + "/" + genBase(gen) }

// parseGen is the generation of a directory name in gen/, false for
// anything else (a *.tmp, a stray file).
func parseGen(name string) (uint64, bool) {
	if len(name) != 20 {
		return 0, false
	}
	gen, err := strconv.ParseUint(name, 10, 64)
	return gen, err == nil && gen != 0
}

// Stage writes generation gen: fill writes it into a fresh gen/<N>.tmp
// through w; every directory of it is synced, it is renamed to gen/<N>
// and gen/ is synced. A generation directory is therefore complete or
// absent, never half there. It refuses gen at or below HighWater, a
// generation that failed before, and staging while a trial runs (the
// trial's directory and its fallback must stay as they are).
func (m *Machine) Stage(gen uint64, fill func(w FS, dir string) error) error {
	m.op.Lock()
	defer m.op.Unlock()
	if err := m.newGeneration(gen); err != nil {
		return fmt.Errorf("stage generation %d: %w", gen, err)
	}
	final := m.GenerationDir(gen)
	tmp := final + tmpSuffix
	// Leftovers of an earlier Stage of gen in this process; neither is
	// referenced by the state (gen is above HighWater and nothing is tried).
	for _, p := range []string{tmp, final} {
		if err := m.fsys.RemoveAll(p); err != nil {
			return fmt.Errorf("stage generation %d: %w", gen, err)
		}
	}
	if err := m.fsys.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("stage generation %d: %w", gen, err)
	}
	if err := fill(m.fsys, tmp); err != nil {
		m.fsys.RemoveAll(tmp) // best effort: Open removes it otherwise
		return fmt.Errorf("stage generation %d: fill %s: %w", gen, tmp, err)
	}
	// The files are durable (WriteFile fsyncs); their names are not until
	// each directory is synced. Only then may the rename publish it.
	if err := m.syncTree(tmp); err != nil {
		m.fsys.RemoveAll(tmp)
		return fmt.Errorf("stage generation %d: %w", gen, err)
	}
	if err := m.fsys.Rename(tmp, final); err != nil {
		return fmt.Errorf("stage generation %d: %w", gen, err)
	}
	if err := m.fsys.SyncDir(filepath.Join(m.dir, genName)); err != nil {
		return fmt.Errorf("stage generation %d: %w", gen, err)
	}
	return nil
}

// newGeneration refuses what may not be staged or begun.
func (m *Machine) newGeneration(gen uint64) error {
	switch {
	case gen == 0:
		return errors.New("generation 0 is not a generation")
	case m.state.Trying != 0:
		return fmt.Errorf("%w: generation %d", ErrTrialRunning, m.state.Trying)
	case gen <= m.state.HighWater:
		return fmt.Errorf("%w %d", ErrNotNewer, m.state.HighWater)
	case m.state.HasFailed(gen):
		return ErrFailedBefore
	}
	return nil
}

// syncTree syncs every directory under dir, children before parents.
func (m *Machine) syncTree(dir string) error {
	entries, err := m.fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := m.syncTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return m.fsys.SyncDir(dir)
}

// SetNextKeys remembers the running trial's key rotation (its statement's
// NextKeys), applied by Commit (written with it, or with the next
// StartAttempt); nil keeps the keys. Without a trial it does nothing: a
// rotation belongs to the generation that commits it.
func (m *Machine) SetNextKeys(keys []string, threshold int) {
	m.op.Lock()
	defer m.op.Unlock()
	if m.state.Trying == 0 {
		return
	}
	s := m.state
	s.NextKeys, s.NextThreshold = slices.Clone(keys), threshold
	m.setState(s)
}

func (m *Machine) setState(s State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = s
}

// Begin makes the staged generation gen the trial: the state {Trying: gen,
// Attempts: 0} is written durably first, then `current` is switched. In
// that order `current` is never ahead of the state: whatever it points at,
// the durable state names it as running, so no boot runs gen without its
// trial (and its attempt count) on record. A crash between the two is
// finished by Open.
func (m *Machine) Begin(gen uint64) error {
	m.op.Lock()
	defer m.op.Unlock()
	if err := m.newGeneration(gen); err != nil {
		return fmt.Errorf("begin the trial of generation %d: %w", gen, err)
	}
	if _, err := m.fsys.ReadDir(m.GenerationDir(gen)); err != nil {
		return fmt.Errorf("begin the trial of generation %d: %w: %w", gen, ErrNotStaged, err)
	}
	s := m.state
	s.Trying, s.Attempts, s.TrialStart = gen, 0, m.now().UTC()
	s.Phase, s.Reason = PhaseTrying, ""
	if err := m.save(s); err != nil {
		return fmt.Errorf("begin the trial of generation %d: %w", gen, err)
	}
	if err := m.setCurrent(gen); err != nil {
		return fmt.Errorf("begin the trial of generation %d: %w", gen, err)
	}
	return nil
}

// StartAttempt counts one more start of the trial, durably, before the
// caller starts its pods: a trial that crashes the board is counted even
// if the board never gets further. When the count would exceed
// MaxAttempts it rolls the trial back instead and returns
// ErrAttemptsExhausted (and attempt 0: nothing is to be started).
func (m *Machine) StartAttempt() (attempt int, err error) {
	m.op.Lock()
	defer m.op.Unlock()
	if m.state.Trying == 0 {
		return 0, fmt.Errorf("start an attempt: %w", ErrNoTrial)
	}
	gen := m.state.Trying
	if m.state.Attempts >= MaxAttempts {
		if err := m.rollback(ErrAttemptsExhausted.Error()); err != nil {
			return 0, fmt.Errorf("start attempt %d of generation %d: %w", m.state.Attempts+1, gen, err)
		}
		return 0, fmt.Errorf("start attempt %d of generation %d: %w", MaxAttempts+1, gen, ErrAttemptsExhausted)
	}
	s := m.state
	s.Attempts++
	if err := m.save(s); err != nil {
		return 0, fmt.Errorf("start attempt %d of generation %d: %w", s.Attempts, gen, err)
	}
	return s.Attempts, nil
}

// Commit makes the trial the committed generation (the old committed one
// becomes Previous, HighWater rises, a key rotation is applied). The state
// is written first; `current` already points at the trial; then the
// generation directories no longer referenced are removed, which is safe
// only once the state that stops referencing them is durable.
func (m *Machine) Commit() error {
	m.op.Lock()
	defer m.op.Unlock()
	gen := m.state.Trying
	if gen == 0 {
		return fmt.Errorf("commit: %w", ErrNoTrial)
	}
	s := m.state
	s.Previous, s.Committed = s.Committed, gen
	s.HighWater = max(s.HighWater, gen)
	s.Trying, s.Attempts, s.TrialStart = 0, 0, time.Time{}
	s.Phase, s.Reason = PhaseCommitted, ""
	if s.NextKeys != nil {
		s.Keys, s.Threshold = s.NextKeys, s.NextThreshold
	}
	s.NextKeys, s.NextThreshold = nil, 0
	if err := m.save(s); err != nil {
		return fmt.Errorf("commit generation %d: %w", gen, err)
	}
	if err := m.setCurrent(gen); err != nil {
		return fmt.Errorf("commit generation %d: %w", gen, err)
	}
	if err := m.gc(); err != nil {
		return fmt.Errorf("commit generation %d: %w", gen, err)
	}
	return nil
}

// Rollback ends a trial (back to Committed, the trial marked failed) or,
// when nothing is tried, undoes the last commit (back to Previous, the
// committed generation marked failed; ErrNoPrevious when there is none).
// The state is written first, so a crash can never forget the failure and
// run the failed generation again; then `current` is switched back and the
// failed generation's directory removed.
func (m *Machine) Rollback(reason string) error {
	m.op.Lock()
	defer m.op.Unlock()
	return m.rollback(reason)
}

func (m *Machine) rollback(reason string) error {
	failed := m.state.Running()
	var err error
	if m.state.Trying != 0 {
		err = m.rollbackState(reason)
	} else {
		if m.state.Previous == 0 {
			return fmt.Errorf("roll back generation %d: %w", m.state.Committed, ErrNoPrevious)
		}
		s := m.state
		s.Failed = append(slices.Clone(s.Failed), Failure{Generation: s.Committed, Reason: reason, At: m.now().UTC()})
		s.Committed, s.Previous = s.Previous, 0
		s.Phase, s.Reason = PhaseRolledBack, reason
		err = m.save(s)
	}
	if err != nil {
		return fmt.Errorf("roll back generation %d: %w", failed, err)
	}
	if err := m.setCurrent(m.state.Running()); err != nil {
		return fmt.Errorf("roll back generation %d: %w", failed, err)
	}
	if err := m.gc(); err != nil {
		return fmt.Errorf("roll back generation %d: %w", failed, err)
	}
	return nil
}

// save writes s durably to state.json, then the same to state.json.copy,
// each as a fsynced temporary file renamed over the old one in a synced
// directory (what internal/atomicfile does, through the FS seam). The copy
// is what Open reads when state.json is unreadable; it is written second,
// so at every instant at least one of the two is a whole state, either
// this one or the one before.
func (m *Machine) save(s State) error {
	b, err := encodeState(s)
	if err != nil {
		return err
	}
	for _, name := range []string{stateName, copyName} {
		if err := m.writeAtomic(name, b); err != nil {
			return err
		}
	}
	// The Machine's view is exactly what the flash holds (no monotonic
	// clock, nil for empty).
	s, err = decodeState(b)
	if err != nil {
		return err
	}
	m.setState(s)
	return nil
}

func (m *Machine) writeAtomic(name string, b []byte) error {
	p := filepath.Join(m.dir, name)
	if err := m.fsys.WriteFile(p+tmpSuffix, bytes.NewReader(b), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := m.fsys.Rename(p+tmpSuffix, p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := m.fsys.SyncDir(m.dir); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// setCurrent points `current` at gen (removes it for 0) unless it already
// does: a symlink current.tmp renamed over it, then the directory synced.
func (m *Machine) setCurrent(gen uint64) error {
	cur := filepath.Join(m.dir, currentName)
	target, err := m.fsys.Readlink(cur)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Not a symlink (EINVAL) or unreadable: replaced below.
		exists = true
	}
	switch {
	case gen == 0 && !exists:
		return nil
	case gen == 0:
		if err := m.fsys.RemoveAll(cur); err != nil {
			return fmt.Errorf("remove %s: %w", cur, err)
		}
	case exists && target == genTarget(gen):
		return nil
	default:
		tmp := cur + tmpSuffix
		if err := m.fsys.RemoveAll(tmp); err != nil {
			return fmt.Errorf("point %s at generation %d: %w", cur, gen, err)
		}
		if err := m.fsys.Symlink(genTarget(gen), tmp); err != nil {
			return fmt.Errorf("point %s at generation %d: %w", cur, gen, err)
		}
		if err := m.fsys.Rename(tmp, cur); err != nil {
			return fmt.Errorf("point %s at generation %d: %w", cur, gen, err)
		}
	}
	if err := m.fsys.SyncDir(m.dir); err != nil {
		return fmt.Errorf("point %s at generation %d: %w", cur, gen, err)
	}
	return nil
}

// gc removes everything in gen/ but the directories of Committed, Previous
// and Trying: half-staged *.tmp, staged generations never begun, failed
// and superseded ones. Called only once the state that stops referencing
// them is durable.
func (m *Machine) gc() error {
	root := filepath.Join(m.dir, genName)
	entries, err := m.fsys.ReadDir(root)
	if err != nil {
		return fmt.Errorf("collect old generations: %w", err)
	}
	removed := false
	for _, e := range entries {
		if gen, ok := parseGen(e.Name()); ok && e.IsDir() && gen != 0 &&
			(gen == m.state.Committed || gen == m.state.Previous || gen == m.state.Trying) {
			continue
		}
		if err := m.fsys.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return fmt.Errorf("collect old generations: %w", err)
		}
		removed = true
	}
	if !removed {
		return nil
	}
	// Not needed for safety (a removal lost to a power cut is redone by
	// the next Open), but it frees the space for good.
	if err := m.fsys.SyncDir(root); err != nil {
		return fmt.Errorf("collect old generations: %w", err)
	}
	return nil
}

// recover is Open's work; see Open and docs/ota.md.
func (m *Machine) recover() error {
	if err := m.ensureDir(filepath.Join(m.dir, genName)); err != nil {
		return err
	}
	// What a killed process renamed but did not sync yet is visible but
	// not durable. Acting on it (removing the generations a visible new
	// state no longer references) and then losing it to a power cut would
	// leave the old state without its generations; so what recovery reads
	// is made durable first. The files renamed were fsynced before.
	for _, d := range []string{m.dir, filepath.Join(m.dir, genName)} {
		if err := m.fsys.SyncDir(d); err != nil {
			return err
		}
	}
	if err := m.load(); err != nil {
		return err
	}
	// Temporary files of an interrupted save or switch: never read, and
	// save and setCurrent replace them anyway; removed to keep the
	// directory clean (not synced: a removal lost is redone next time).
	for _, name := range []string{stateName + tmpSuffix, copyName + tmpSuffix, currentName + tmpSuffix} {
		if err := m.removeIfPresent(filepath.Join(m.dir, name)); err != nil {
			return err
		}
	}
	if err := m.repairMissing(); err != nil {
		return err
	}
	if err := m.setCurrent(m.state.Running()); err != nil {
		return err
	}
	return m.gc()
}

// ensureDir makes p and its missing parents durably: each directory made
// is synced into its parent, or a power cut could take the whole OTA
// directory away after a state was written into it.
func (m *Machine) ensureDir(p string) error {
	if _, err := m.fsys.ReadDir(p); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	missing := []string{p}
	for d := filepath.Dir(p); d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := m.fsys.ReadDir(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
	}
	if err := m.fsys.MkdirAll(p, 0o755); err != nil {
		return err
	}
	for _, d := range slices.Backward(missing) {
		if err := m.fsys.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func (m *Machine) removeIfPresent(p string) error {
	if _, err := m.fsys.Readlink(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := m.fsys.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// load reads the state. state.json is the truth; state.json.copy stands
// in when state.json is missing or unreadable (and is rewritten when it
// differs); when neither is a whole state, the state is derived from
// `current` (deriveState). Nothing is written on a board that never had
// an update.
func (m *Machine) load() error {
	main, mainRaw, mainErr := m.readState(stateName)
	cp, cpRaw, cpErr := m.readState(copyName)
	switch {
	case mainErr == nil:
		m.state = main
		if cpErr != nil || !bytes.Equal(mainRaw, cpRaw) {
			return m.writeAtomic(copyName, mainRaw)
		}
		return nil
	case cpErr == nil:
		m.state = cp
		return m.writeAtomic(stateName, cpRaw)
	}
	s, derived, err := m.deriveState(mainErr, cpErr)
	if err != nil {
		return err
	}
	if !derived {
		m.state = s
		return nil
	}
	return m.save(s)
}

// readState reads and checks one copy of the state; raw is the file as
// read (a whole state re-encodes to the same bytes).
func (m *Machine) readState(name string) (State, []byte, error) {
	b, err := m.fsys.ReadFile(filepath.Join(m.dir, name))
	if err != nil {
		return State{}, nil, err
	}
	s, err := decodeState(b)
	if err != nil {
		return State{}, nil, fmt.Errorf("read %s: %w", filepath.Join(m.dir, name), err)
	}
	return s, b, nil
}

// deriveState is the last resort when neither state.json nor its copy is
// a whole state (a double fault: the flash lost or garbled both). Neither
// missing and no `current`: a board that never had an update, the zero
// state. Otherwise the generation `current` points at ran last, but
// whether it was committed or on trial is lost, so it is put on trial
// again (attempts 0; a generation that was healthy passes its gate again
// and commits) over the highest generation directory below it, which is
// the committed one when it was a trial and the previous one when it was
// committed; never a generation above it, which could be staged but never
// run. The replay bar falls to that generation and the list of failed
// generations is lost: both are reported in Reason.
func (m *Machine) deriveState(mainErr, cpErr error) (State, bool, error) {
	zero := State{Phase: PhaseCommitted}
	target, err := m.fsys.Readlink(filepath.Join(m.dir, currentName))
	if err != nil {
		if errors.Is(mainErr, fs.ErrNotExist) && errors.Is(cpErr, fs.ErrNotExist) {
			return zero, false, nil
		}
		zero.Reason = fmt.Sprintf("the OTA state was lost (%v; %v) and no generation was running: starting over", mainErr, cpErr)
		return zero, true, nil
	}
	base, ok := strings.CutPrefix(target, genName+"/")
	running, okGen := parseGen(base)
	gens, err := m.generations()
	if err != nil {
		return State{}, false, err
	}
	if !ok || !okGen || !slices.Contains(gens, running) {
		zero.Reason = fmt.Sprintf("the OTA state was lost (%v; %v) and current (%q) is no generation: starting over", mainErr, cpErr, target)
		return zero, true, nil
	}
	var below uint64
	for _, g := range gens {
		if g < running {
			below = max(below, g)
		}
	}
	return State{
		Committed:  below,
		HighWater:  below,
		Trying:     running,
		TrialStart: m.now().UTC(),
		Phase:      PhaseTrying,
		Reason: fmt.Sprintf("the OTA state was lost (%v; %v): generation %d, which was running, is tried again over generation %d",
			mainErr, cpErr, running, below),
	}, true, nil
}

// generations are the complete generation directories in gen/.
func (m *Machine) generations() ([]uint64, error) {
	entries, err := m.fsys.ReadDir(filepath.Join(m.dir, genName))
	if err != nil {
		return nil, err
	}
	var gens []uint64
	for _, e := range entries {
		if g, ok := parseGen(e.Name()); ok && e.IsDir() {
			gens = append(gens, g)
		}
	}
	return gens, nil
}

// repairMissing handles a running generation whose directory is gone,
// which no crash can cause (a generation is referenced only once complete
// and removed only once unreferenced) but a hand or a failing flash can:
// a missing trial is rolled back, a missing committed generation gives way
// to the previous one, so `current` never dangles.
func (m *Machine) repairMissing() error {
	gens, err := m.generations()
	if err != nil {
		return err
	}
	for m.state.Running() != 0 && !slices.Contains(gens, m.state.Running()) {
		gen := m.state.Running()
		reason := fmt.Sprintf("generation %d is missing from %s", gen, filepath.Join(m.dir, genName))
		if m.state.Trying != 0 {
			if err := m.rollbackState(reason); err != nil {
				return err
			}
			continue
		}
		s := m.state
		s.Committed, s.Previous = s.Previous, 0
		s.Phase, s.Reason = PhaseRolledBack, reason
		if err := m.save(s); err != nil {
			return err
		}
	}
	return nil
}

// rollbackState is the state half of a trial's rollback.
func (m *Machine) rollbackState(reason string) error {
	s := m.state
	s.Failed = append(slices.Clone(s.Failed), Failure{Generation: s.Trying, Reason: reason, At: m.now().UTC()})
	s.Trying, s.Attempts, s.TrialStart = 0, 0, time.Time{}
	s.NextKeys, s.NextThreshold = nil, 0
	s.Phase, s.Reason = PhaseRolledBack, reason
	return m.save(s)
}
