package trial_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/ota/trial"
	"github.com/podboot/podboot/agent/ota/trial/crashfs"
)

func put(t *testing.T, f *crashfs.FS, name, content string) {
	t.Helper()
	if err := f.WriteFile(otaDir+"/"+name, strings.NewReader(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.SyncDir(otaDir); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, f *crashfs.FS, name string) {
	t.Helper()
	if err := f.RemoveAll(otaDir + "/" + name); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, f *crashfs.FS, name string) string {
	t.Helper()
	b, err := f.ReadFile(otaDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRecoveryFromDamage: a state.json that is unreadable, garbled or a
// digit off never bricks the board; see deriveState for the rule.
func TestRecoveryFromDamage(t *testing.T) {
	at := now().UTC()
	trial3 := trial.State{Committed: 2, Previous: 1, HighWater: 2, Trying: 3, Attempts: 1, TrialStart: at, Phase: trial.PhaseTrying}
	flipDigit := func(t *testing.T, f *crashfs.FS, name string) {
		s := read(t, f, name)
		flipped := strings.Replace(s, `"attempts": 1`, `"attempts": 2`, 1)
		if flipped == s {
			t.Fatalf("%s has no attempts to flip:\n%s", name, s)
		}
		put(t, f, name, flipped)
	}
	lostReason := func(running, over uint64) func(string) bool {
		return func(r string) bool {
			return strings.HasPrefix(r, "the OTA state was lost (") &&
				strings.HasSuffix(r, fmt.Sprintf("generation %d, which was running, is tried again over generation %d", running, over))
		}
	}
	tests := []struct {
		name       string
		setup      func(m *trial.Machine) error
		damage     func(t *testing.T, f *crashfs.FS)
		want       trial.State
		wantReason func(string) bool // when set, checked instead of want.Reason
		wantFlash  flash
	}{
		{
			name:      "state.json garbled: the copy",
			setup:     steps(committed(1), committed(2), trying(3, 1)),
			damage:    func(t *testing.T, f *crashfs.FS) { put(t, f, "state.json", `{"committed": 2, "prev`) },
			want:      trial3,
			wantFlash: flash{Gens: gens(1, 2, 3), Current: cur(3)},
		},
		{
			name:      "state.json a digit off: the checksum catches it, the copy",
			setup:     steps(committed(1), committed(2), trying(3, 1)),
			damage:    func(t *testing.T, f *crashfs.FS) { flipDigit(t, f, "state.json") },
			want:      trial3,
			wantFlash: flash{Gens: gens(1, 2, 3), Current: cur(3)},
		},
		{
			name:      "state.json missing: the copy",
			setup:     steps(committed(1), committed(2), trying(3, 1)),
			damage:    func(t *testing.T, f *crashfs.FS) { remove(t, f, "state.json") },
			want:      trial3,
			wantFlash: flash{Gens: gens(1, 2, 3), Current: cur(3)},
		},
		{
			name:      "the copy garbled: state.json",
			setup:     steps(committed(1), committed(2), trying(3, 1)),
			damage:    func(t *testing.T, f *crashfs.FS) { flipDigit(t, f, "state.json.copy") },
			want:      trial3,
			wantFlash: flash{Gens: gens(1, 2, 3), Current: cur(3)},
		},
		{
			name:  "both lost during a trial: the trial again over the committed one",
			setup: steps(committed(1), committed(2), trying(3, 2)),
			damage: func(t *testing.T, f *crashfs.FS) {
				put(t, f, "state.json", "")
				put(t, f, "state.json.copy", "{}")
			},
			want:       trial.State{Committed: 2, HighWater: 2, Trying: 3, TrialStart: at, Phase: trial.PhaseTrying},
			wantReason: lostReason(3, 2),
			wantFlash:  flash{Gens: gens(2, 3), Current: cur(3)},
		},
		{
			name:  "both lost, nothing tried, a generation staged: the running one is tried again over the previous, the staged one is not run",
			setup: steps(committed(1), committed(2), func(m *trial.Machine) error { return m.Stage(3, fill(3)) }),
			damage: func(t *testing.T, f *crashfs.FS) {
				remove(t, f, "state.json")
				put(t, f, "state.json.copy", "\x00\x00\x00")
			},
			want:       trial.State{Committed: 1, HighWater: 1, Trying: 2, TrialStart: at, Phase: trial.PhaseTrying},
			wantReason: lostReason(2, 1),
			wantFlash:  flash{Gens: gens(1, 2), Current: cur(2)},
		},
		{
			name:  "both lost and no current: start over",
			setup: steps(committed(1), committed(2)),
			damage: func(t *testing.T, f *crashfs.FS) {
				put(t, f, "state.json", "x")
				remove(t, f, "state.json.copy")
				remove(t, f, "current")
			},
			want:       trial.State{Phase: trial.PhaseCommitted},
			wantReason: func(r string) bool { return strings.HasSuffix(r, "and no generation was running: starting over") },
			wantFlash:  flash{},
		},
		{
			name:  "both missing and no current, a generation staged: a new board, nothing written",
			setup: func(m *trial.Machine) error { return m.Stage(1, fill(1)) },
			damage: func(t *testing.T, f *crashfs.FS) {
				remove(t, f, "state.json")
				remove(t, f, "state.json.copy")
			},
			want:      trial.State{Phase: trial.PhaseCommitted},
			wantFlash: flash{},
		},
		{
			name:   "the trial's directory gone: rolled back",
			setup:  steps(committed(1), committed(2), trying(3, 1)),
			damage: func(t *testing.T, f *crashfs.FS) { remove(t, f, fmt.Sprintf("gen/%020d", 3)) },
			want: trial.State{Committed: 2, Previous: 1, HighWater: 2, Phase: trial.PhaseRolledBack,
				Reason: "generation 3 is missing from /flash/ota/gen",
				Failed: []trial.Failure{{Generation: 3, Reason: "generation 3 is missing from /flash/ota/gen", At: at}}},
			wantFlash: flash{Gens: gens(1, 2), Current: cur(2)},
		},
		{
			name:   "the committed directory gone: the previous one",
			setup:  steps(committed(1), committed(2)),
			damage: func(t *testing.T, f *crashfs.FS) { remove(t, f, fmt.Sprintf("gen/%020d", 2)) },
			want: trial.State{Committed: 1, HighWater: 2, Phase: trial.PhaseRolledBack,
				Reason: "generation 2 is missing from /flash/ota/gen"},
			wantFlash: flash{Gens: gens(1), Current: cur(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := crashfs.New()
			m := open(t, f)
			if err := tt.setup(m); err != nil {
				t.Fatalf("setup: %v", err)
			}
			tt.damage(t, f)
			got := open(t, f).State()
			if tt.wantReason != nil {
				if !tt.wantReason(got.Reason) {
					t.Errorf("reason %q", got.Reason)
				}
				got.Reason = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFlash, readFlash(t, f)); diff != "" {
				t.Errorf("flash (-want +got):\n%s", diff)
			}
			// Repaired: both copies whole and equal (or neither on a new
			// board), and a power cut keeps the repair.
			tree, err := f.Tree(otaDir)
			if err != nil {
				t.Fatal(err)
			}
			if tree["state.json"] != tree["state.json.copy"] {
				t.Errorf("state.json and its copy differ after recovery:\n%s\n%s", tree["state.json"], tree["state.json.copy"])
			}
			again := open(t, f.PowerCut())
			if tt.wantReason != nil {
				got := again.State()
				got.Reason = ""
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("state after a power cut (-want +got):\n%s", diff)
				}
			} else if diff := cmp.Diff(tt.want, again.State()); diff != "" {
				t.Errorf("state after a power cut (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStateFile: state.json is a plain trial.State JSON (other readers
// may decode it so) plus its checksum.
func TestStateFile(t *testing.T) {
	f := crashfs.New()
	m := open(t, f)
	if err := steps(committed(1), trying(2, 1))(m); err != nil {
		t.Fatal(err)
	}
	b := []byte(read(t, f, "state.json"))
	want := `{
  "committed": 1,
  "highWater": 1,
  "trying": 2,
  "attempts": 1,
  "trialStart": "2026-12-07T12:00:00Z",
  "state": "trying",
  "sha256": "`
	if !bytes.HasPrefix(b, []byte(want)) {
		t.Errorf("state.json =\n%s\nwant it to start with\n%s", b, want)
	}
}
