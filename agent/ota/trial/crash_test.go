package trial_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/ota/trial"
	"github.com/podboot/podboot/agent/ota/trial/crashfs"
)

// crashModes are the two ways a crash leaves the flash: a power cut keeps
// only what was durable; a killed process (SIGKILL, a panic) leaves
// everything the kernel was given, durable or not, and a power cut may
// still follow later.
var crashModes = []struct {
	name  string
	image func(*crashfs.FS) *crashfs.FS
}{
	{"power cut", (*crashfs.FS).PowerCut},
	{"kill", (*crashfs.FS).Clone},
}

// TestCrashAtEveryOperation crashes every sequence of transitions at every
// mutating operation in turn (every write, fsync, rename, symlink, mkdir,
// removal and directory sync), in both crash modes, then runs recovery
// (Open), crashes recovery itself at every one of its operations and
// recovers again, and checks the invariants on every result. Every crash
// point, not a sample.
func TestCrashAtEveryOperation(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(m *trial.Machine) error
		run     func(m *trial.Machine) error
		wantErr error // of the uncrashed run
	}{
		{name: "first stage and begin", run: trying(1, 0)},
		{name: "stage and begin over a committed generation", setup: steps(committed(1), committed(2)), run: trying(3, 0)},
		{name: "stage and begin after a failed generation", setup: steps(committed(1), trying(2, 1), rolledBack("unhealthy")), run: trying(3, 0)},
		{name: "start attempt", setup: steps(committed(1), committed(2), trying(3, 1)), run: func(m *trial.Machine) error {
			_, err := m.StartAttempt()
			return err
		}},
		{name: "commit", setup: steps(committed(1), committed(2), trying(3, 1)), run: func(m *trial.Machine) error {
			m.SetNextKeys([]string{"ed25519:next"}, 1)
			return m.Commit()
		}},
		{name: "commit of the first trial", setup: trying(1, 1), run: (*trial.Machine).Commit},
		{name: "rollback of a trial", setup: steps(committed(1), committed(2), trying(3, 2)), run: rolledBack("unhealthy")},
		{name: "rollback of the first trial", setup: trying(1, 1), run: rolledBack("unhealthy")},
		{name: "operator rollback of a committed generation", setup: steps(committed(1), committed(2)), run: rolledBack("operator")},
		{name: "fourth start attempt rolls back", setup: steps(committed(1), committed(2), trying(3, 3)), wantErr: trial.ErrAttemptsExhausted,
			run: func(m *trial.Machine) error {
				_, err := m.StartAttempt()
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The starting image, all of it durable.
			f := crashfs.New()
			m := open(t, f)
			if tt.setup != nil {
				if err := tt.setup(m); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			base := f.PowerCut()
			before := open(t, base.Clone()).State()
			if diff := cmp.Diff(m.State(), before); diff != "" {
				t.Fatalf("the setup is not durable (-want +got):\n%s", diff)
			}

			// The uncrashed run: its state and its number of operations.
			img := base.Clone()
			m = open(t, img)
			start := img.Ops()
			if err := tt.run(m); !errors.Is(err, tt.wantErr) {
				t.Fatalf("run = %v, want %v", err, tt.wantErr)
			}
			after := m.State()
			n := img.Ops() - start
			if cmp.Equal(before, after) {
				t.Fatal("the run changed nothing")
			}
			c := checker{t: t, before: before, after: after}

			recoveries := 0
			for k := 0; k <= n; k++ {
				img := base.Clone()
				m := open(t, img)
				img.CrashAt(k)
				err := tt.run(m)
				switch {
				case k < n && !errors.Is(err, crashfs.ErrCrashed):
					t.Fatalf("crash at operation %d: run = %v, want crashfs.ErrCrashed wrapped", k, err)
				case k == n && !errors.Is(err, tt.wantErr):
					t.Fatalf("crash after the last operation: run = %v, want %v", err, tt.wantErr)
				}
				for _, mode := range crashModes {
					where := fmt.Sprintf("%s at operation %d of %d", mode.name, k, n)
					crashed := mode.image(img)
					c.checkCurrentBeforeRecovery(where, crashed)
					recoveries += c.recover(where, crashed)
				}
			}
			t.Logf("%d crash points (operations 0..%d) × %d modes, %d crash points in recovery, all recovered", n+1, n, len(crashModes), recoveries)
		})
	}
}

type checker struct {
	t             *testing.T
	before, after trial.State
}

// recover opens img (recovery) and checks it; then it crashes recovery at
// each of its operations in both modes, recovers again and checks that.
// It returns the number of recovery crash points.
func (c checker) recover(where string, img *crashfs.FS) int {
	c.t.Helper()
	probe := img.Clone()
	m, err := trial.Open(probe, otaDir, now)
	if err != nil {
		c.t.Fatalf("%s: recovery: %v", where, err)
	}
	c.check(where, probe, m.State())
	r := probe.Ops()
	for j := range r {
		crashed := img.Clone()
		crashed.CrashAt(j)
		if _, err := trial.Open(crashed, otaDir, now); !errors.Is(err, crashfs.ErrCrashed) {
			c.t.Fatalf("%s: recovery crashed at its operation %d: Open = %v, want crashfs.ErrCrashed wrapped", where, j, err)
		}
		for _, mode := range crashModes {
			again := mode.image(crashed)
			m, err := trial.Open(again, otaDir, now)
			where := fmt.Sprintf("%s, recovery %s at its operation %d of %d", where, mode.name, j, r)
			if err != nil {
				c.t.Fatalf("%s: second recovery: %v", where, err)
			}
			c.check(where, again, m.State())
		}
	}
	return r
}

// checkCurrentBeforeRecovery: whatever a crash leaves, `current` is absent
// or points at a complete generation, so whatever reads it before Open's
// recovery (a boot loader, one day) still finds one whole generation.
func (c checker) checkCurrentBeforeRecovery(where string, f *crashfs.FS) {
	c.t.Helper()
	target, err := f.Readlink(path.Join(otaDir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		c.t.Fatalf("%s: %v", where, err)
	}
	var gen uint64
	if _, err := fmt.Sscanf(target, "gen/%020d", &gen); err != nil || target != fmt.Sprintf("gen/%020d", gen) {
		c.t.Errorf("%s: before recovery, current is %q, not a generation", where, target)
		return
	}
	tree, err := f.Tree(path.Join(otaDir, target))
	if err != nil {
		c.t.Errorf("%s: before recovery, current points at %q: %v", where, target, err)
		return
	}
	if diff := cmp.Diff(genFiles(gen), tree); diff != "" {
		c.t.Errorf("%s: before recovery, current points at an incomplete generation (-want +got):\n%s", where, diff)
	}
}

// check is every invariant of a recovered flash whose machine reports got.
func (c checker) check(where string, f *crashfs.FS, got trial.State) {
	c.t.Helper()
	errorf := func(format string, args ...any) {
		c.t.Helper()
		c.t.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	// One transition, one state write: the state is the one before or the
	// one after, nothing in between and nothing else.
	if !cmp.Equal(got, c.before) && !cmp.Equal(got, c.after) {
		errorf("state is neither the one before nor the one after:\n-before +got:\n%s\n-after +got:\n%s", cmp.Diff(c.before, got), cmp.Diff(c.after, got))
	}
	if got.HighWater < c.before.HighWater {
		errorf("high water %d fell below %d", got.HighWater, c.before.HighWater)
	}
	if got.HasFailed(got.Running()) {
		errorf("failed generation %d is running", got.Running())
	}
	for _, f := range c.before.Failed {
		if !got.HasFailed(f.Generation) {
			errorf("failure of generation %d forgotten", f.Generation)
		}
	}
	if got.Committed != c.before.Committed && !cmp.Equal(got, c.after) {
		errorf("committed generation %d became %d without the transition's state", c.before.Committed, got.Committed)
	}

	tree, err := f.Tree(otaDir)
	if err != nil {
		c.t.Fatalf("%s: %v", where, err)
	}
	// `current` is Running(), a complete generation.
	if running := got.Running(); running == 0 {
		if link, ok := tree["current"]; ok {
			errorf("current is %q with nothing running", link)
		}
	} else if want := "-> gen/" + fmt.Sprintf("%020d", running); tree["current"] != want {
		errorf("current is %q, want %q", tree["current"], want)
	}
	// gen/ holds exactly the referenced generations, each complete:
	// nothing half-staged, nothing staged but not begun.
	var keep []uint64
	for _, g := range []uint64{got.Committed, got.Previous, got.Trying} {
		if g != 0 {
			keep = append(keep, g)
		}
	}
	want := map[string]string{"gen": "dir"}
	for _, g := range keep {
		dir := fmt.Sprintf("gen/%020d", g)
		want[dir] = "dir"
		for name, content := range genFiles(g) {
			want[path.Join(dir, name)] = content
		}
	}
	if got.Running() != 0 {
		want["current"] = tree["current"] // checked above
	}
	// The state files: both, equal, holding got; or neither on a board
	// that never had a state.
	stateFile, hasState := tree["state.json"]
	if hasState {
		want["state.json"], want["state.json.copy"] = stateFile, stateFile
	} else if !cmp.Equal(got, trial.State{Phase: trial.PhaseCommitted}) {
		errorf("no state.json, but state %+v", got)
	}
	if diff := cmp.Diff(want, tree); diff != "" {
		errorf("flash (-want +got):\n%s", diff)
	}
	// What recovery returned is durable: the caller acts on it (starts
	// its pods, counts an attempt), so a power cut right after must not
	// bring back another state.
	if diff := cmp.Diff(got, open(c.t, f.PowerCut()).State()); diff != "" {
		errorf("state after recovery and a power cut (-want +got):\n%s", diff)
	}
	// Recovery converged: opening again changes nothing (its only
	// operations are the two directory syncs it starts with).
	again := f.Clone()
	m, err := trial.Open(again, otaDir, now)
	if err != nil {
		c.t.Fatalf("%s: reopen: %v", where, err)
	}
	if againTree, err := again.Tree(otaDir); err != nil || !cmp.Equal(tree, againTree) || again.Ops() != 2 {
		errorf("reopening a recovered flash did %d operations; flash (-before +after):\n%s", again.Ops(), cmp.Diff(tree, againTree))
	}
	if diff := cmp.Diff(got, m.State()); diff != "" {
		errorf("reopened state (-want +got):\n%s", diff)
	}
}
