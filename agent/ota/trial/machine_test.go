package trial_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/ota/trial"
	"github.com/podboot/podboot/agent/ota/trial/crashfs"
)

// flash is what the tests see of the OTA directory: the generation
// directories and where `current` points.
type flash struct {
	Gens    []string
	Current string
}

func readFlash(t *testing.T, f *crashfs.FS) flash {
	t.Helper()
	tree, err := f.Tree(otaDir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := f.ReadDir(otaDir + "/gen")
	if err != nil {
		t.Fatal(err)
	}
	var fl flash
	for _, e := range entries {
		fl.Gens = append(fl.Gens, e.Name())
	}
	fl.Current = tree["current"]
	return fl
}

func gens(gs ...uint64) []string {
	var out []string
	for _, g := range gs {
		out = append(out, fmt.Sprintf("%020d", g))
	}
	return out
}

func cur(g uint64) string { return fmt.Sprintf("-> gen/%020d", g) }

func TestTransitions(t *testing.T) {
	at := now().UTC()
	exhausted := trial.ErrAttemptsExhausted.Error()
	tests := []struct {
		name      string
		setup     func(m *trial.Machine) error
		op        func(m *trial.Machine) (int, error) // the attempt for StartAttempt
		wantErr   error
		wantMsg   string // the error's text, when it wraps no sentinel
		want      trial.State
		wantFlash flash
		wantRet   int
	}{
		{
			name:      "open an empty flash",
			op:        func(m *trial.Machine) (int, error) { return 0, nil },
			want:      trial.State{Phase: trial.PhaseCommitted},
			wantFlash: flash{},
		},
		{
			name:      "stage and begin the first generation",
			op:        func(m *trial.Machine) (int, error) { return 0, stageBegin(m, 1) },
			want:      trial.State{Trying: 1, TrialStart: at, Phase: trial.PhaseTrying},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "stage without begin leaves current alone",
			setup:     committed(1),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Stage(2, fill(2)) },
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1, 2), Current: cur(1)},
		},
		{
			name:  "stage the same generation again replaces it",
			setup: func(m *trial.Machine) error { return m.Stage(1, fill(1)) },
			op: func(m *trial.Machine) (int, error) {
				return 0, m.Stage(1, fill(1))
			},
			want:      trial.State{Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1)},
		},
		{
			name:      "start attempts count",
			setup:     trying(1, 1),
			op:        (*trial.Machine).StartAttempt,
			wantRet:   2,
			want:      trial.State{Trying: 1, Attempts: 2, TrialStart: at, Phase: trial.PhaseTrying},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "the fourth start rolls back",
			setup:     steps(committed(1), trying(2, 3)),
			op:        (*trial.Machine).StartAttempt,
			wantErr:   trial.ErrAttemptsExhausted,
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseRolledBack, Reason: exhausted, Failed: []trial.Failure{{Generation: 2, Reason: exhausted, At: at}}},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "start attempt without a trial",
			setup:     committed(1),
			op:        (*trial.Machine).StartAttempt,
			wantErr:   trial.ErrNoTrial,
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "commit the first trial",
			setup:     trying(1, 1),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Commit() },
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "commit keeps the previous generation and removes older ones",
			setup:     steps(committed(1), committed(2), trying(3, 1)),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Commit() },
			want:      trial.State{Committed: 3, Previous: 2, HighWater: 3, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(2, 3), Current: cur(3)},
		},
		{
			name:  "commit applies the trial's key rotation",
			setup: steps(committed(1), trying(2, 1)),
			op: func(m *trial.Machine) (int, error) {
				m.SetNextKeys([]string{"ed25519:a", "ed25519:b"}, 2)
				return 0, m.Commit()
			},
			want:      trial.State{Committed: 2, Previous: 1, HighWater: 2, Phase: trial.PhaseCommitted, Keys: []string{"ed25519:a", "ed25519:b"}, Threshold: 2},
			wantFlash: flash{Gens: gens(1, 2), Current: cur(2)},
		},
		{
			name:  "a key rotation outside a trial is ignored",
			setup: committed(1),
			op: func(m *trial.Machine) (int, error) {
				m.SetNextKeys([]string{"ed25519:a"}, 1)
				return 0, commit(m, 2)
			},
			want:      trial.State{Committed: 2, Previous: 1, HighWater: 2, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1, 2), Current: cur(2)},
		},
		{
			name:      "commit without a trial",
			setup:     committed(1),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Commit() },
			wantErr:   trial.ErrNoTrial,
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "roll back a trial",
			setup:     steps(committed(1), committed(2), trying(3, 2)),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Rollback("pod web not Ready") },
			want:      trial.State{Committed: 2, Previous: 1, HighWater: 2, Phase: trial.PhaseRolledBack, Reason: "pod web not Ready", Failed: []trial.Failure{{Generation: 3, Reason: "pod web not Ready", At: at}}},
			wantFlash: flash{Gens: gens(1, 2), Current: cur(2)},
		},
		{
			name:      "roll back the first trial: nothing runs",
			setup:     trying(1, 1),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Rollback("bad") },
			want:      trial.State{Phase: trial.PhaseRolledBack, Reason: "bad", Failed: []trial.Failure{{Generation: 1, Reason: "bad", At: at}}},
			wantFlash: flash{},
		},
		{
			name:      "operator rollback of a committed generation",
			setup:     steps(committed(1), committed(2)),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Rollback("operator") },
			want:      trial.State{Committed: 1, HighWater: 2, Phase: trial.PhaseRolledBack, Reason: "operator", Failed: []trial.Failure{{Generation: 2, Reason: "operator", At: at}}},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "operator rollback twice",
			setup:     steps(committed(1), committed(2), rolledBack("operator")),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Rollback("again") },
			wantErr:   trial.ErrNoPrevious,
			want:      trial.State{Committed: 1, HighWater: 2, Phase: trial.PhaseRolledBack, Reason: "operator", Failed: []trial.Failure{{Generation: 2, Reason: "operator", At: at}}},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "rollback with nothing committed",
			op:        func(m *trial.Machine) (int, error) { return 0, m.Rollback("x") },
			wantErr:   trial.ErrNoPrevious,
			want:      trial.State{Phase: trial.PhaseCommitted},
			wantFlash: flash{},
		},
		{
			name:      "stage at the high water mark",
			setup:     steps(committed(1), committed(2), rolledBack("operator")),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Stage(2, fill(2)) },
			wantErr:   trial.ErrNotNewer,
			want:      trial.State{Committed: 1, HighWater: 2, Phase: trial.PhaseRolledBack, Reason: "operator", Failed: []trial.Failure{{Generation: 2, Reason: "operator", At: at}}},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "stage a generation that failed",
			setup:     steps(committed(1), trying(2, 1), rolledBack("bad")),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Stage(2, fill(2)) },
			wantErr:   trial.ErrFailedBefore,
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseRolledBack, Reason: "bad", Failed: []trial.Failure{{Generation: 2, Reason: "bad", At: at}}},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "stage during a trial",
			setup:     trying(1, 1),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Stage(2, fill(2)) },
			wantErr:   trial.ErrTrialRunning,
			want:      trial.State{Trying: 1, Attempts: 1, TrialStart: at, Phase: trial.PhaseTrying},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "begin during a trial",
			setup:     trying(1, 0),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Begin(2) },
			wantErr:   trial.ErrTrialRunning,
			want:      trial.State{Trying: 1, TrialStart: at, Phase: trial.PhaseTrying},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:      "begin a generation not staged",
			setup:     committed(1),
			op:        func(m *trial.Machine) (int, error) { return 0, m.Begin(2) },
			wantErr:   trial.ErrNotStaged,
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
		{
			name:  "a failing fill stages nothing",
			setup: committed(1),
			op: func(m *trial.Machine) (int, error) {
				return 0, m.Stage(2, func(w trial.FS, dir string) error {
					if err := fill(2)(w, dir); err != nil {
						return err
					}
					return errors.New("layer truncated")
				})
			},
			wantMsg:   "stage generation 2: fill /flash/ota/gen/00000000000000000002.tmp: layer truncated",
			want:      trial.State{Committed: 1, HighWater: 1, Phase: trial.PhaseCommitted},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := crashfs.New()
			m := open(t, f)
			if tt.setup != nil {
				if err := tt.setup(m); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			ret, err := tt.op(m)
			switch {
			case tt.wantMsg != "":
				if err == nil || err.Error() != tt.wantMsg {
					t.Errorf("error = %v, want %q", err, tt.wantMsg)
				}
			case !errors.Is(err, tt.wantErr):
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if ret != tt.wantRet {
				t.Errorf("returned %d, want %d", ret, tt.wantRet)
			}
			if diff := cmp.Diff(tt.want, m.State()); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFlash, readFlash(t, f)); diff != "" {
				t.Errorf("flash (-want +got):\n%s", diff)
			}
			// What the machine says is what the flash holds, durably.
			if diff := cmp.Diff(tt.want, open(t, f.PowerCut()).State()); diff != "" {
				t.Errorf("state after a power cut (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOpenRemovesUnbegunGenerations: a generation staged but never begun
// (the controller crashed between Stage and Begin) is not kept.
func TestOpenRemovesUnbegunGenerations(t *testing.T) {
	f := crashfs.New()
	m := open(t, f)
	if err := steps(committed(1), func(m *trial.Machine) error { return m.Stage(2, fill(2)) })(m); err != nil {
		t.Fatal(err)
	}
	open(t, f)
	if diff := cmp.Diff(flash{Gens: gens(1), Current: cur(1)}, readFlash(t, f)); diff != "" {
		t.Errorf("flash (-want +got):\n%s", diff)
	}
}

// TestStateDuringStage: the status can be read while a long Stage runs
// (a fill unpacks image archives for minutes).
func TestStateDuringStage(t *testing.T) {
	m := open(t, crashfs.New())
	err := m.Stage(1, func(w trial.FS, dir string) error {
		got := make(chan trial.State)
		go func() { got <- m.State() }()
		select {
		case st := <-got:
			if diff := cmp.Diff(trial.State{Phase: trial.PhaseCommitted}, st); diff != "" {
				t.Errorf("State during Stage (-want +got):\n%s", diff)
			}
		case <-time.After(10 * time.Second):
			return errors.New("State() blocked while Stage ran")
		}
		return fill(1)(w, dir)
	})
	if err != nil {
		t.Fatal(err)
	}
}
