package crashfs

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, f *FS, p, content string) {
	t.Helper()
	if err := f.WriteFile(p, strings.NewReader(content), 0o644); err != nil {
		t.Fatalf("WriteFile(%s): %v", p, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tree(t *testing.T, f *FS) map[string]string {
	t.Helper()
	got, err := f.Tree("/")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestDurability checks the model: what a power cut and a kill keep after
// each kind of operation.
func TestDurability(t *testing.T) {
	tests := []struct {
		name          string
		run           func(t *testing.T, f *FS)
		cut, killWant map[string]string
	}{
		{
			name: "a file in an unsynced directory is lost",
			run:  func(t *testing.T, f *FS) { write(t, f, "/a", "hello") },
			cut:  map[string]string{}, killWant: map[string]string{"a": "hello"},
		},
		{
			name: "a file in a synced directory stays",
			run: func(t *testing.T, f *FS) {
				write(t, f, "/a", "hello")
				must(t, f.SyncDir("/"))
			},
			cut: map[string]string{"a": "hello"}, killWant: map[string]string{"a": "hello"},
		},
		{
			name: "an unsynced rename is undone",
			run: func(t *testing.T, f *FS) {
				write(t, f, "/a", "x")
				must(t, f.SyncDir("/"))
				must(t, f.Rename("/a", "/b"))
			},
			cut: map[string]string{"a": "x"}, killWant: map[string]string{"b": "x"},
		},
		{
			name: "a directory's entries need its own sync, not its parent's",
			run: func(t *testing.T, f *FS) {
				must(t, f.MkdirAll("/d", 0o755))
				write(t, f, "/d/f", "x")
				must(t, f.SyncDir("/"))
			},
			cut: map[string]string{"d": "dir"}, killWant: map[string]string{"d": "dir", "d/f": "x"},
		},
		{
			name: "an unsynced removal comes back",
			run: func(t *testing.T, f *FS) {
				must(t, f.MkdirAll("/d", 0o755))
				write(t, f, "/d/f", "x")
				must(t, f.SyncDir("/d"))
				must(t, f.SyncDir("/"))
				must(t, f.RemoveAll("/d"))
			},
			cut: map[string]string{"d": "dir", "d/f": "x"}, killWant: map[string]string{},
		},
		{
			name: "a symlink needs its directory's sync",
			run: func(t *testing.T, f *FS) {
				must(t, f.Symlink("gen/1", "/current"))
				must(t, f.SyncDir("/"))
				must(t, f.Symlink("gen/2", "/current.tmp"))
			},
			cut: map[string]string{"current": "-> gen/1"}, killWant: map[string]string{"current": "-> gen/1", "current.tmp": "-> gen/2"},
		},
		{
			name: "a crash at WriteFile's fsync leaves the data written, not durable",
			run: func(t *testing.T, f *FS) {
				write(t, f, "/a", "old!")
				must(t, f.SyncDir("/"))
				f.CrashAt(1) // 0 = the write, 1 = the fsync
				err := f.WriteFile("/a", strings.NewReader("new content!"), 0o644)
				if !errors.Is(err, ErrCrashed) {
					t.Fatalf("WriteFile = %v, want ErrCrashed", err)
				}
			},
			cut: map[string]string{"a": "new co"}, killWant: map[string]string{"a": "new content!"},
		},
		{
			name: "a crash at WriteFile's write leaves nothing",
			run: func(t *testing.T, f *FS) {
				must(t, f.SyncDir("/"))
				f.CrashAt(0)
				if err := f.WriteFile("/a", strings.NewReader("new"), 0o644); !errors.Is(err, ErrCrashed) {
					t.Fatalf("WriteFile = %v, want ErrCrashed", err)
				}
			},
			cut: map[string]string{}, killWant: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New()
			tt.run(t, f)
			if diff := cmp.Diff(tt.cut, tree(t, f.PowerCut())); diff != "" {
				t.Errorf("after a power cut (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.killWant, tree(t, f.Clone())); diff != "" {
				t.Errorf("after a kill (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCrashAt checks the counting: the k-th operation and all after it
// fail, and nothing after the crash happens.
func TestCrashAt(t *testing.T) {
	run := func(f *FS) error {
		for _, op := range []func() error{
			func() error { return f.MkdirAll("/d/e", 0o755) },                          // 2 ops
			func() error { return f.WriteFile("/d/f", strings.NewReader("x"), 0o644) }, // 2 ops
			func() error { return f.Rename("/d/f", "/d/g") },                           // 1
			func() error { return f.Symlink("g", "/d/l") },                             // 1
			func() error { return f.RemoveAll("/d") },                                  // 4: e, g, l, d
			func() error { return f.SyncDir("/") },                                     // 1
		} {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	}
	f := New()
	if err := run(f); err != nil {
		t.Fatal(err)
	}
	const total = 11
	if f.Ops() != total {
		t.Fatalf("Ops() = %d, want %d", f.Ops(), total)
	}
	for k := range total {
		f := New()
		f.CrashAt(k)
		if err := run(f); !errors.Is(err, ErrCrashed) {
			t.Fatalf("crash at %d: run = %v, want ErrCrashed", k, err)
		}
		if f.Ops() != k {
			t.Errorf("crash at %d: %d operations happened", k, f.Ops())
		}
		if _, err := f.ReadDir("/"); !errors.Is(err, ErrCrashed) {
			t.Errorf("crash at %d: ReadDir after the crash = %v, want ErrCrashed", k, err)
		}
	}
}

func TestErrors(t *testing.T) {
	f := New()
	must(t, f.MkdirAll("/d/e", 0o755))
	write(t, f, "/d/e/f", "x")
	write(t, f, "/d/g", "x")
	for name, err := range map[string]error{
		"read a missing file":           func() error { _, err := f.ReadFile("/nope"); return err }(),
		"readlink a missing link":       func() error { _, err := f.Readlink("/nope"); return err }(),
		"write into a missing dir":      f.WriteFile("/nope/f", strings.NewReader(""), 0o644),
		"rename a missing file":         f.Rename("/nope", "/x"),
		"rename over a non-empty dir":   f.Rename("/d/g", "/d/e"),
		"symlink over an existing file": f.Symlink("x", "/d/g"),
		"readlink of a file":            func() error { _, err := f.Readlink("/d/g"); return err }(),
	} {
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %v, want a *fs.PathError", name, err)
		}
	}
	if _, err := f.ReadFile("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if err := f.RemoveAll("/nope/deeper"); err != nil {
		t.Errorf("RemoveAll(missing) = %v, want nil", err)
	}
}
