package manifest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDirStateSettling drives the Watcher's scan with explicit times: a file
// is trusted once its mtime, or the first sight of its content, is 500 ms old.
func TestDirStateSettling(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.yaml")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	setFile := func(content string, mtime time.Time) {
		t.Helper()
		writeFile(t, dir, "web.yaml", content)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	d := newDirState(dir, testOpts, 500*time.Millisecond)
	type step struct {
		Pods   []string
		Errors int
		Wait   time.Duration
	}
	scan := func(now time.Time) step {
		s, wait := d.scan(now)
		var pods []string
		for _, p := range s.Pods {
			pods = append(pods, p.Name+"="+p.Spec.Containers[0].Image)
		}
		return step{pods, len(s.Errors), wait}
	}

	setFile(podYAML("web", "nginx:1"), t0.Add(-time.Hour))
	got := []step{scan(t0)} // old file: trusted at once

	setFile(podYAML("web", "nginx:2"), t0.Add(time.Second))
	got = append(got,
		scan(t0.Add(1100*time.Millisecond)), // fresh: keep nginx:1, wake in 400ms
		scan(t0.Add(1500*time.Millisecond)), // settled by mtime
	)

	setFile(podYAML("web", "nginx:3"), t0.Add(time.Hour)) // mtime in the future (clock jumped)
	got = append(got,
		scan(t0.Add(2*time.Second)),                      // first sight
		scan(t0.Add(2*time.Second+499*time.Millisecond)), // not yet
		scan(t0.Add(2*time.Second+500*time.Millisecond)), // settled by first sight
	)

	setFile("apiVersion: v1\nkind: Pod\nmetadata: {name: web", t0.Add(-time.Hour)) // broken, settled
	got = append(got, scan(t0.Add(3*time.Second)))

	want := []step{
		{Pods: []string{"web=nginx:1"}},
		{Pods: []string{"web=nginx:1"}, Wait: 400 * time.Millisecond},
		{Pods: []string{"web=nginx:2"}},
		{Pods: []string{"web=nginx:2"}, Wait: 500 * time.Millisecond},
		{Pods: []string{"web=nginx:2"}, Wait: time.Millisecond},
		{Pods: []string{"web=nginx:3"}},
		{Pods: []string{"web=nginx:3"}, Errors: 1}, // last good kept, error reported
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scan steps (-want +got):\n%s", diff)
	}
}
