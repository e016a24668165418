package manifest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDirStateCompleteHint drives the scan with explicit times and hints: a
// file reported complete is read at once; one being written settles.
func TestDirStateCompleteHint(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		Pods []string
		Wait time.Duration
	}
	tests := []struct {
		name  string
		hints []fileHint // given after the new content is written
		want  step       // the scan at the content's mtime
	}{
		{"no hint: settles", nil,
			step{Pods: []string{"web=nginx:1"}, Wait: 500 * time.Millisecond}},
		{"closed or renamed: read at once", []fileHint{{name: "web.yaml", complete: true}},
			step{Pods: []string{"web=nginx:2"}}},
		{"written again after the close: settles",
			[]fileHint{{name: "web.yaml", complete: true}, {name: "web.yaml"}},
			step{Pods: []string{"web=nginx:1"}, Wait: 500 * time.Millisecond}},
		{"closed again after writing: read at once",
			[]fileHint{{name: "web.yaml"}, {name: "web.yaml", complete: true}},
			step{Pods: []string{"web=nginx:2"}}},
		{"another file's hint: settles", []fileHint{{name: "db.yaml", complete: true}},
			step{Pods: []string{"web=nginx:1"}, Wait: 500 * time.Millisecond}},
		{"events lost: settles", []fileHint{{name: "web.yaml", complete: true}, {}},
			step{Pods: []string{"web=nginx:1"}, Wait: 500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			d := newDirState(dir, testOpts, 500*time.Millisecond)
			scan := func(now time.Time) step {
				s, wait := d.scan(now)
				var pods []string
				for _, p := range s.Pods {
					pods = append(pods, p.Name+"="+p.Spec.Containers[0].Image)
				}
				return step{pods, wait}
			}
			setFile(t, dir, "web.yaml", podYAML("web", "nginx:1"), t0.Add(-time.Hour))
			if diff := cmp.Diff(step{Pods: []string{"web=nginx:1"}}, scan(t0)); diff != "" {
				t.Fatalf("initial scan (-want +got):\n%s", diff)
			}
			setFile(t, dir, "web.yaml", podYAML("web", "nginx:2"), t0.Add(time.Second))
			for _, h := range tt.hints {
				if h.name == "" {
					d.forgetComplete()
				} else {
					d.hint(h)
				}
			}
			if diff := cmp.Diff(tt.want, scan(t0.Add(time.Second))); diff != "" {
				t.Errorf("scan after the change (-want +got):\n%s", diff)
			}
			// A hint is good for one read: the next change settles again.
			setFile(t, dir, "web.yaml", podYAML("web", "nginx:3"), t0.Add(2*time.Second))
			got := scan(t0.Add(2 * time.Second))
			if got.Wait != 500*time.Millisecond {
				t.Errorf("next change without a hint: %+v, want it to wait 500ms", got)
			}
		})
	}
}

func setFile(t *testing.T, dir, name, content string, mtime time.Time) {
	t.Helper()
	writeFile(t, dir, name, content)
	if err := os.Chtimes(filepath.Join(dir, name), mtime, mtime); err != nil {
		t.Fatal(err)
	}
}
