package ota

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/ota/bundle"
	"github.com/podboot/podboot/agent/ota/trial"
	"github.com/podboot/podboot/internal/device"
)

// fakeTarget is the pods' side: Health answers what the test says.
type fakeTarget struct {
	mu      sync.Mutex
	runs    []uint64 // every Run's generation
	imports []string
	health  func(gen uint64) []PodHealth
	check   error
	gen     uint64
}

func (f *fakeTarget) Check(dir string) error { return f.check }

func (f *fakeTarget) Import(ctx context.Context, dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imports = append(f.imports, filepath.Base(dir))
	return nil
}

func (f *fakeTarget) Run(gen uint64, dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != 0 {
		if _, err := os.Stat(filepath.Join(dir, "pods", "web.yaml")); err != nil {
			return fmt.Errorf("generation %d has no pods: %w", gen, err)
		}
	}
	f.runs = append(f.runs, gen)
	f.gen = gen
	return nil
}

func (f *fakeTarget) Health() []PodHealth {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.health == nil || f.gen == 0 {
		return nil
	}
	return f.health(f.gen)
}

func (f *fakeTarget) running() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

type recorded struct{ kind, reason, message string }

type harness struct {
	t      *testing.T
	dir    string
	key    ed25519.PrivateKey
	pub    string
	target *fakeTarget
	events []recorded
	cond   []string
	mu     sync.Mutex
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	pub, err := bundle.GenerateKey(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.LoadPrivateKey(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, dir: dir, key: key, pub: pub, target: &fakeTarget{}}
}

func (h *harness) controller(mutate ...func(*Config)) *Controller {
	h.t.Helper()
	cfg := Config{
		Dir: filepath.Join(h.dir, "flash", "ota"),
		Device: device.OTA{
			Keys:           []string{h.pub},
			HealthDeadline: &metav1.Duration{Duration: time.Minute},
			StableFor:      &metav1.Duration{Duration: 10 * time.Second},
		},
		Target: h.target,
		Event: func(kind, reason, message string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.events = append(h.events, recorded{kind, reason, message})
		},
		Condition: func(rolledBack bool, reason, message string) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.cond = append(h.cond, fmt.Sprintf("%v %s", rolledBack, reason))
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, _, err := c.Boot(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// bundle builds generation gen, signed by key, as a tar.
func (h *harness) bundle(gen uint64, key ed25519.PrivateKey) []byte {
	h.t.Helper()
	pods := filepath.Join(h.t.TempDir(), "pods")
	if err := os.MkdirAll(pods, 0o755); err != nil {
		h.t.Fatal(err)
	}
	pod := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: busybox:gen%d\n", gen)
	if err := os.WriteFile(filepath.Join(pods, "web.yaml"), []byte(pod), 0o644); err != nil {
		h.t.Fatal(err)
	}
	var buf bytes.Buffer
	err := bundle.Build(context.Background(), bundle.BuildOptions{Keys: []ed25519.PrivateKey{key}, Generation: gen, PodsDir: pods, IssuedAt: time.Unix(1e9, 0)}, &buf)
	if err != nil {
		h.t.Fatal(err)
	}
	return buf.Bytes()
}

func (h *harness) reasons() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.reason)
	}
	return out
}

func ready(gen uint64) []PodHealth {
	return []PodHealth{{Namespace: "default", Name: "web", Present: true, Ready: true}}
}

// run starts c's loop in the bubble and returns its stop.
func run(c *Controller) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	return func() { cancel(); <-done }
}

func TestPushCommitsAHealthyGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.target.health = ready
		c := h.controller()
		defer run(c)()

		st, err := c.Push(context.Background(), bytes.NewReader(h.bundle(1, h.key)))
		if err != nil {
			t.Fatalf("push generation 1: %v", err)
		}
		if st.State != "trying" || st.Trying != 1 || st.Attempts != 1 {
			t.Errorf("status after the push = %+v, want trying 1, attempt 1", st)
		}
		time.Sleep(9 * time.Second)
		if got := c.Status().State; got != "trying" {
			t.Errorf("after 9 s of 10 s stable: state %q, want trying", got)
		}
		time.Sleep(3 * time.Second)
		want := Status{Generation: 1, State: "committed", Failed: []uint64{}}
		if diff := cmp.Diff(want, c.Status()); diff != "" {
			t.Errorf("status after stableFor (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"OTATrying", "OTACommitted"}, h.reasons()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if got := h.target.running(); got != 1 {
			t.Errorf("target runs generation %d, want 1", got)
		}
	})
}

func TestCrashLoopingGenerationRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		restarts := int32(0)
		h.target.health = func(gen uint64) []PodHealth {
			if gen == 2 {
				// Ready a moment, then a restart: a crash loop.
				restarts++
				return []PodHealth{{Namespace: "default", Name: "web", Present: true, Ready: restarts%2 == 1, Restarts: restarts / 2, Reason: "CrashLoopBackOff"}}
			}
			return ready(gen)
		}
		c := h.controller()
		defer run(c)()
		if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(1, h.key))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second)
		if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(2, h.key))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		st := c.Status()
		if st.State != "rolled-back" || st.Generation != 1 || !slices.Equal(st.Failed, []uint64{2}) || !strings.Contains(st.Reason, "generation 2 rolled back to generation 1") {
			t.Errorf("status = %+v, want rolled-back to 1 with 2 failed and the reason", st)
		}
		if got := h.target.running(); got != 1 {
			t.Errorf("target runs generation %d after the rollback, want 1", got)
		}
		if r := h.reasons(); r[len(r)-1] != "OTARolledBack" {
			t.Errorf("events %v, want the last to be OTARolledBack", r)
		}
		// The failed generation is never retried.
		_, err := c.Push(context.Background(), bytes.NewReader(h.bundle(2, h.key)))
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Reason != bundle.ReasonFailedBefore {
			t.Errorf("pushing the failed generation again: %v, want a FailedBefore refusal", err)
		}
	})
}

func TestNotReadyWithinTheDeadlineRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.target.health = func(gen uint64) []PodHealth {
			if gen == 2 {
				return []PodHealth{{Namespace: "default", Name: "web", Present: true, Reason: "ImagePullBackOff"}}
			}
			return ready(gen)
		}
		c := h.controller()
		defer run(c)()
		if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(1, h.key))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second)
		if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(2, h.key))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		if got := c.Status().State; got != "trying" {
			t.Errorf("before the deadline: %q, want trying", got)
		}
		time.Sleep(2 * time.Second)
		st := c.Status()
		if st.State != "rolled-back" || !strings.Contains(st.Reason, "default/web (ImagePullBackOff)") {
			t.Errorf("after the deadline: %+v, want rolled-back naming the pod and its reason", st)
		}
	})
}

func TestRefusals(t *testing.T) {
	h := newHarness(t)
	h.target.health = ready
	c := h.controller(func(c *Config) {
		c.Device.StableFor = &metav1.Duration{Duration: time.Millisecond}
		c.Tick = time.Millisecond
	})
	if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(3, h.key))); err != nil {
		t.Fatal(err)
	}
	for c.Status().State != "committed" || c.Status().Generation != 3 {
		c.judge()
		time.Sleep(time.Millisecond)
	}
	_, stranger, _ := ed25519.GenerateKey(nil)
	tampered := h.bundle(4, h.key)
	if i := bytes.Index(tampered, []byte(`"payload":"`)); i > 0 {
		tampered[i+20] ^= 1
	} else {
		t.Fatal("no payload in the bundle tar")
	}
	for _, tc := range []struct {
		name   string
		tar    []byte
		reason string
	}{
		{"unknown key", h.bundle(4, stranger), bundle.ReasonUnknownKey},
		{"replay", h.bundle(3, h.key), bundle.ReasonReplay},
		{"older", h.bundle(2, h.key), bundle.ReasonReplay},
		{"not a tar", []byte("hello"), bundle.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := c.Push(context.Background(), bytes.NewReader(tc.tar))
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.Reason != tc.reason {
				t.Fatalf("push: %v, want a %s refusal", err, tc.reason)
			}
			if st.Generation != 3 || st.State != "committed" || st.Reason != err.Error() {
				t.Errorf("status after the refusal = %+v, want generation 3 committed with the refusal's reason %q", st, err)
			}
		})
	}
	h.target.check = &CollisionError{Message: "it defines Pod default/web, which the board's own manifests in pods/ define"}
	_, err := c.Push(context.Background(), bytes.NewReader(h.bundle(5, h.key)))
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Reason != ReasonCollision || !strings.Contains(err.Error(), "bundle generation 5 refused: it defines Pod default/web") {
		t.Errorf("colliding bundle: %v, want a Collision refusal naming the pod", err)
	}
	h.target.check = &InvalidManifestError{Message: "its manifests have errors: web.yaml: document 0 (Pod default/web): spec.containers: Required value"}
	_, err = c.Push(context.Background(), bytes.NewReader(h.bundle(6, h.key)))
	if !errors.As(err, &refused) || refused.Reason != ReasonInvalidManifest || err.Error() != "bundle generation 6 refused: its manifests have errors: web.yaml: document 0 (Pod default/web): spec.containers: Required value" {
		t.Errorf("bundle with a bad manifest: %v, want an InvalidManifest refusal naming the document", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "flash", "ota", "gen", fmt.Sprintf("%020d", 5))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused generation's directory: %v, want none", err)
	}
}

func TestAttemptsAcrossRestarts(t *testing.T) {
	h := newHarness(t)
	h.target.health = func(gen uint64) []PodHealth {
		if gen == 2 {
			return []PodHealth{{Namespace: "default", Name: "web"}}
		}
		return ready(gen)
	}
	c := h.controller(func(c *Config) { c.Device.StableFor = &metav1.Duration{Duration: time.Millisecond} })
	if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(1, h.key))); err != nil {
		t.Fatal(err)
	}
	for c.Status().State != "committed" {
		c.judge()
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(2, h.key))); err != nil {
		t.Fatal(err)
	}
	// The agent restarts (power cut) twice during the trial: each start
	// counts, and the fourth start rolls back without running generation 2.
	for attempt := 2; attempt <= trial.MaxAttempts; attempt++ {
		h.target = &fakeTarget{health: h.target.health}
		c = h.controller()
		if st := c.Status(); st.State != "trying" || st.Attempts != attempt || h.target.running() != 2 {
			t.Fatalf("start %d: status %+v, target runs %d; want trying 2, attempt %d", attempt, st, h.target.running(), attempt)
		}
	}
	h.target = &fakeTarget{health: h.target.health}
	c = h.controller()
	st := c.Status()
	if st.State != "rolled-back" || st.Generation != 1 || !slices.Equal(st.Failed, []uint64{2}) {
		t.Errorf("after %d starts: %+v, want rolled back to 1", trial.MaxAttempts+1, st)
	}
	if diff := cmp.Diff([]uint64{1}, h.target.runs); diff != "" {
		t.Errorf("generations run on the last start (-want +got):\n%s", diff)
	}
}

func TestOperatorRollback(t *testing.T) {
	h := newHarness(t)
	h.target.health = ready
	c := h.controller(func(c *Config) { c.Device.StableFor = &metav1.Duration{Duration: time.Millisecond} })
	commit := func(gen uint64) {
		t.Helper()
		if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(gen, h.key))); err != nil {
			t.Fatal(err)
		}
		for c.Status().Generation != gen {
			c.judge()
			time.Sleep(time.Millisecond)
		}
	}
	commit(1)
	_, err := c.Rollback(context.Background())
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		t.Errorf("rollback with one generation: %v, want a ConflictError", err)
	}
	commit(2)
	st, err := c.Rollback(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Generation != 1 || st.State != "rolled-back" || !slices.Equal(st.Failed, []uint64{2}) || h.target.running() != 1 {
		t.Errorf("after the operator's rollback: %+v, target runs %d; want generation 1 rolled-back, 2 failed", st, h.target.running())
	}
}

func TestKeyRotation(t *testing.T) {
	h := newHarness(t)
	h.target.health = ready
	c := h.controller(func(c *Config) { c.Device.StableFor = &metav1.Duration{Duration: time.Millisecond} })
	nextPub, next, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Generation 1, signed by the device.yaml key, names the next key.
	var buf bytes.Buffer
	pods := filepath.Join(h.dir, "pods")
	if err := os.MkdirAll(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pods, "web.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = bundle.Build(context.Background(), bundle.BuildOptions{Keys: []ed25519.PrivateKey{h.key}, Generation: 1, PodsDir: pods,
		NextKeys: []string{bundle.FormatPublicKey(nextPub)}, IssuedAt: time.Unix(1e9, 0)}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	// Before it commits, the old key still rules.
	if _, err := c.Push(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	for c.Status().State != "committed" {
		c.judge()
		time.Sleep(time.Millisecond)
	}
	_, err = c.Push(context.Background(), bytes.NewReader(h.bundle(2, h.key)))
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Reason != bundle.ReasonUnknownKey {
		t.Errorf("generation 2 signed by the rotated-out key: %v, want UnknownKey", err)
	}
	if _, err := c.Push(context.Background(), bytes.NewReader(h.bundle(2, next))); err != nil {
		t.Errorf("generation 2 signed by the next key: %v, want it taken", err)
	}
	// The rotation survives a restart: it is in the state on the flash.
	h.target = &fakeTarget{health: ready}
	c = h.controller()
	if _, err := c.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(context.Background(), bytes.NewReader(h.bundle(3, h.key)))
	if !errors.As(err, &refused) || refused.Reason != bundle.ReasonUnknownKey {
		t.Errorf("after a restart, generation 3 signed by the rotated-out key: %v, want UnknownKey", err)
	}
}
