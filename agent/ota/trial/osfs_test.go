package trial_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/ota/trial"
)

// TestOSFS runs the machine on a real directory: the symlink, the renames,
// the removals and the state file are what the crash model assumes.
func TestOSFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flash", "ota")
	m, err := trial.Open(trial.OSFS(), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	for gen := uint64(1); gen <= 3; gen++ {
		if err := commit(m, gen); err != nil {
			t.Fatalf("commit generation %d: %v", gen, err)
		}
	}
	link, err := os.Readlink(filepath.Join(dir, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "gen/00000000000000000003"; link != want {
		t.Errorf("current -> %q, want %q", link, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "current", "pods", "web.yaml"))
	if err != nil {
		t.Fatalf("read through current: %v", err)
	}
	if want := genFiles(3)["pods/web.yaml"]; string(b) != want {
		t.Errorf("current/pods/web.yaml = %q, want %q", b, want)
	}
	if diff := cmp.Diff([]string{"00000000000000000002", "00000000000000000003"}, names(t, filepath.Join(dir, "gen"))); diff != "" {
		t.Errorf("gen/ after three commits (-want +got):\n%s", diff)
	}

	// Leftovers of a crash, and a stale temporary state file of another
	// content: Open removes them; the operator's rollback then switches
	// current back.
	for _, p := range []string{"gen/00000000000000000004.tmp/pods", "gen/00000000000000000005"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("gen/00000000000000000004", filepath.Join(dir, "current.tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json.tmp"), []byte("a longer stale temporary file than any state"+strings.Repeat(".", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = trial.Open(trial.OSFS(), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"current", "gen", "state.json", "state.json.copy"}, names(t, dir)); diff != "" {
		t.Errorf("ota/ after recovery (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"00000000000000000002", "00000000000000000003"}, names(t, filepath.Join(dir, "gen"))); diff != "" {
		t.Errorf("gen/ after recovery (-want +got):\n%s", diff)
	}
	if err := m.Rollback("operator"); err != nil {
		t.Fatal(err)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "current")); link != "gen/00000000000000000002" {
		t.Errorf("current -> %q after the rollback, want gen/00000000000000000002", link)
	}
	if diff := cmp.Diff([]string{"00000000000000000002"}, names(t, filepath.Join(dir, "gen"))); diff != "" {
		t.Errorf("gen/ after the rollback (-want +got):\n%s", diff)
	}
	// The state reads back through a new Machine.
	reopened, err := trial.Open(trial.OSFS(), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m.State(), reopened.State()); diff != "" {
		t.Errorf("reopened state (-want +got):\n%s", diff)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func TestOSFSWriteFileTruncates(t *testing.T) {
	fsys := trial.OSFS()
	p := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"a long first content", "short"} {
		if err := fsys.WriteFile(p, strings.NewReader(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := fsys.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("content = %q, want %q", got, content)
		}
	}
	if err := fsys.SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("SyncDir(missing) = %v, want an error naming it", err)
	}
}
