package logs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// logSpec is a file to create under a test root: its size and how long ago
// it was last written.
type logSpec struct {
	size int
	age  time.Duration
}

func makeLogs(t *testing.T, root string, files map[string]logSpec) {
	t.Helper()
	now := time.Now()
	for rel, f := range files {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Repeat("x", f.size)), 0o640); err != nil {
			t.Fatal(err)
		}
		mt := now.Add(-f.age)
		if err := os.Chtimes(path, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// listFiles returns the regular files under root, relative, sorted.
func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBudgetEnforce(t *testing.T) {
	const min = time.Minute
	for _, tc := range []struct {
		name  string
		files map[string]logSpec
		open  []string // relative paths held open by a Writer
		// openMaxSize is the open files' MaxSize (0: the default 1 MiB).
		openMaxSize int64
		max         int64
		// removed is in the order of removal.
		removed []string
	}{
		{
			name: "under the budget nothing goes",
			files: map[string]logSpec{
				"ns_a_1/c/0.log": {1000, 5 * min}, "ns_a_1/c/0.log.1": {1000, 9 * min},
				"ns_b_2/c/3.log": {1000, 1 * min},
			},
			max: 3000,
		},
		{
			name: "rotated files go oldest first, across pods, until under",
			files: map[string]logSpec{
				"ns_a_1/c/1.log": {1000, 1 * min}, "ns_a_1/c/1.log.1": {1000, 8 * min},
				"ns_b_2/c/0.log": {1000, 2 * min}, "ns_b_2/c/0.log.1": {1000, 9 * min},
				"ns_b_2/d/0.log": {1000, 3 * min}, "ns_b_2/d/0.log.1": {1000, 7 * min},
			},
			max:     4500,
			removed: []string{"ns_b_2/c/0.log.1", "ns_a_1/c/1.log.1"},
		},
		{
			name: "earlier attempts go after every rotated file, even a newer one",
			files: map[string]logSpec{
				"ns_a_1/c/3.log": {1000, 1 * min},
				"ns_a_1/c/2.log": {1000, 30 * min}, "ns_a_1/c/2.log.1": {1000, 20 * min},
				"ns_b_2/c/0.log": {1000, 2 * min}, "ns_b_2/c/0.log.1": {1000, 3 * min},
			},
			max:     2000,
			removed: []string{"ns_a_1/c/2.log.1", "ns_b_2/c/0.log.1", "ns_a_1/c/2.log"},
		},
		{
			name: "the newest attempt of a container never goes",
			files: map[string]logSpec{
				"ns_a_1/c/0.log": {5000, 50 * min},
				"ns_b_2/c/7.log": {5000, 60 * min}, "ns_b_2/c/6.log": {10, 1 * min},
			},
			max:     100,
			removed: []string{"ns_b_2/c/6.log"},
		},
		{
			name: "a file a writer has open never goes",
			files: map[string]logSpec{
				// 1.log is still being drained after its exit while
				// attempt 2 has started.
				"ns_a_1/c/1.log": {1000, 10 * min}, "ns_a_1/c/2.log": {1000, 1 * min},
				"ns_a_1/c/0.log": {1000, 20 * min},
			},
			open:    []string{"ns_a_1/c/1.log"},
			max:     500,
			removed: []string{"ns_a_1/c/0.log"},
		},
		{
			// 610 bytes on disk, but the open file may grow to 1000
			// before it rotates: room is kept for it.
			name: "an open file counts at its maximum size",
			files: map[string]logSpec{
				"ns_a_1/c/0.log":   {10, 1 * min},
				"ns_b_2/c/0.log":   {100, 2 * min},
				"ns_b_2/c/0.log.1": {500, 3 * min},
			},
			open:        []string{"ns_a_1/c/0.log"},
			openMaxSize: 1000,
			max:         1200,
			removed:     []string{"ns_b_2/c/0.log.1"},
		},
		{
			name: "files that are not logs are neither counted nor removed",
			files: map[string]logSpec{
				"ns_a_1/c/notes.txt": {9000, 90 * min}, "ns_a_1/c/x.log": {9000, 90 * min},
				"ns_a_1/c/01.log": {9000, 90 * min}, "ns_a_1/c/1.log.x": {9000, 90 * min},
				"ns_a_1/c/1.log": {100, 1 * min}, "ns_a_1/c/1.log.1": {100, 2 * min},
			},
			max: 200,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			makeLogs(t, root, tc.files)
			// Opening a writer enforces the budget too: what it removes
			// is reported.
			var removed []string
			b := NewBudget(root, tc.max, func(r []string, err error) {
				if err != nil {
					t.Errorf("enforce when a writer opens: %v", err)
				}
				removed = append(removed, r...)
			})
			for _, rel := range tc.open {
				w, err := b.NewWriter(filepath.Join(root, rel), Config{MaxSize: tc.openMaxSize})
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
			}
			r, err := b.Enforce()
			if err != nil {
				t.Fatalf("Enforce: %v", err)
			}
			removed = append(removed, r...)
			var gotRemoved []string
			for _, p := range removed {
				rel, _ := filepath.Rel(root, p)
				gotRemoved = append(gotRemoved, rel)
			}
			if diff := cmp.Diff(tc.removed, gotRemoved); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			var wantLeft []string
			for rel := range tc.files {
				if !slices.Contains(tc.removed, rel) {
					wantLeft = append(wantLeft, rel)
				}
			}
			slices.Sort(wantLeft)
			if diff := cmp.Diff(wantLeft, listFiles(t, root)); diff != "" {
				t.Errorf("files left (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBudgetMissingRoot(t *testing.T) {
	b := NewBudget(filepath.Join(t.TempDir(), "none"), 1, nil)
	removed, err := b.Enforce()
	if err != nil || removed != nil {
		t.Errorf("Enforce of a missing root = %q, %v; want nothing, nil", removed, err)
	}
}

// A rotation is when the logs grow by a file: the writer has the budget
// enforced then, and the other container's older rotated file goes.
func TestBudgetEnforcedOnRotation(t *testing.T) {
	root := t.TempDir()
	var mu sync.Mutex
	var reported []string
	b := NewBudget(root, 350, func(removed []string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("budget: %v", err)
		}
		for _, p := range removed {
			rel, _ := filepath.Rel(root, p)
			reported = append(reported, rel)
		}
	})
	cfg := Config{MaxSize: 100, MaxFiles: 2}
	// With its CRI prefix (about 40 bytes) a line fills a file: each write
	// after the first rotates. Two containers' files: 4 x ~100 > 350.
	line := strings.Repeat("y", 60) + "\n"

	old, err := b.NewWriter(filepath.Join(root, "ns_old_1/c/0.log"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := old.Stream(Stdout).Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(root, "ns_old_1/c/0.log.1"), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}

	w, err := b.NewWriter(filepath.Join(root, "ns_new_2/c/0.log"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range 2 {
		if _, err := w.Stream(Stdout).Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"ns_old_1/c/0.log.1"}, reported); diff != "" {
		t.Errorf("removed at the rotation (-want +got):\n%s", diff)
	}
	want := []string{"ns_new_2/c/0.log", "ns_new_2/c/0.log.1", "ns_old_1/c/0.log"}
	if diff := cmp.Diff(want, listFiles(t, root)); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
}

func TestRemoveFiles(t *testing.T) {
	dir := t.TempDir()
	makeLogs(t, dir, map[string]logSpec{
		"3.log": {1, 0}, "3.log.1": {1, 0}, "3.log.2": {1, 0},
		"30.log": {1, 0}, "3.log.x": {1, 0}, "2.log": {1, 0},
	})
	if err := RemoveFiles(filepath.Join(dir, "3.log")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"2.log", "3.log.x", "30.log"}, listFiles(t, dir)); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
	// Gone already, or never there: not an error.
	if err := RemoveFiles(filepath.Join(dir, "3.log")); err != nil {
		t.Errorf("second RemoveFiles: %v", err)
	}
	if err := RemoveFiles(filepath.Join(dir, "none", "0.log")); err != nil {
		t.Errorf("RemoveFiles in a missing directory: %v", err)
	}
}

func TestPodDirAndUID(t *testing.T) {
	dir := PodDir("/state/pods", "default", "web", "0b1c")
	if want := "/state/pods/default_web_0b1c"; dir != want {
		t.Errorf("PodDir = %q, want %q", dir, want)
	}
	for _, tc := range []struct {
		name string
		uid  string
		ok   bool
	}{
		{"default_web_0b1c", "0b1c", true},
		{"kube-system_web-1.a_8e2f-11", "8e2f-11", true},
		{"default_web", "", false},
		{"a_b_c_d", "", false},
		{"default__0b1c", "", false},
		{"lost+found", "", false},
	} {
		uid, ok := PodUID(tc.name)
		if uid != tc.uid || ok != tc.ok {
			t.Errorf("PodUID(%q) = %q, %v; want %q, %v", tc.name, uid, ok, tc.uid, tc.ok)
		}
	}
}

func TestConfigOr(t *testing.T) {
	device := Config{MaxSize: 2 << 20, MaxFiles: 3, MaxTotal: 32 << 20}
	for _, tc := range []struct {
		name  string
		flags Config
		want  Config
	}{
		{"no flags: device.yaml", Config{}, device},
		{"flags win", Config{MaxSize: 5, MaxFiles: 4, MaxTotal: 6}, Config{MaxSize: 5, MaxFiles: 4, MaxTotal: 6}},
		{"per field", Config{MaxFiles: 5}, Config{MaxSize: 2 << 20, MaxFiles: 5, MaxTotal: 32 << 20}},
	} {
		if diff := cmp.Diff(tc.want, tc.flags.Or(device)); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", tc.name, diff)
		}
	}
}

// Writers rotating at once: the budget holds at every enforcement, and
// so at the end, and no writer's open file is ever removed.
func TestBudgetConcurrentWriters(t *testing.T) {
	root := t.TempDir()
	const writers, maxSize, budget = 8, 1000, 12000
	b := NewBudget(root, budget, func(_ []string, err error) {
		if err != nil {
			t.Errorf("budget: %v", err)
		}
	})
	var wg sync.WaitGroup
	for i := range writers {
		path := filepath.Join(root, "ns_p_"+string(rune('a'+i)), "c", "0.log")
		w, err := b.NewWriter(path, Config{MaxSize: maxSize, MaxFiles: 3})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range 300 {
				if _, err := w.Stream(Stdout).Write([]byte("some output of a busy container\n")); err != nil {
					t.Error(err)
					return
				}
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("a writer's open file: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var total int64
	for _, rel := range listFiles(t, root) {
		st, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > budget {
		t.Errorf("logs take %d bytes, over the %d-byte budget", total, budget)
	}
}
