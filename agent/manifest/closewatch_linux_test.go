//go:build linux

package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestHintFor(t *testing.T) {
	tests := []struct {
		mask uint32
		want fileHint
	}{
		{unix.IN_CLOSE_WRITE, fileHint{name: "a.yaml", complete: true}},
		{unix.IN_MOVED_TO, fileHint{name: "a.yaml", complete: true}},
		{unix.IN_CREATE, fileHint{name: "a.yaml"}},
		{unix.IN_MODIFY, fileHint{name: "a.yaml"}},
		{unix.IN_Q_OVERFLOW, fileHint{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, hintFor("a.yaml", tt.mask), cmp.AllowUnexported(fileHint{})); diff != "" {
			t.Errorf("hintFor(%#x) (-want +got):\n%s", tt.mask, diff)
		}
	}
}

// quickOnlyWatcher can deliver a change only through the close-write and
// rename path: the ordinary debounce and the settle time are an hour.
func quickOnlyWatcher(dir string) *Watcher {
	w := newTestWatcher(dir)
	w.debounce, w.settle = time.Hour, time.Hour
	return w
}

func TestWatcherRenameIsQuick(t *testing.T) {
	dir := t.TempDir()
	setFile(t, dir, "web.yaml", podYAML("web", "nginx:1"), time.Now().Add(-2*time.Hour)) // settled
	st := startWatcher(t, quickOnlyWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	renameInto(t, dir, "web.yaml", podYAML("web", "nginx:2"))
	st.next("replaced by rename", hasImage("web", "nginx:2"), alwaysRunning("web"))
	renameInto(t, dir, "db.yaml", podYAML("db", "redis:7"))
	st.next("added by rename", all(hasImage("db", "redis:7"), hasImage("web", "nginx:2")), alwaysRunning("web"))
}

func TestWatcherClosedWriteIsQuick(t *testing.T) {
	dir := t.TempDir()
	setFile(t, dir, "web.yaml", podYAML("web", "nginx:1"), time.Now().Add(-2*time.Hour)) // settled
	st := startWatcher(t, quickOnlyWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:2")) // truncate, write, close
	st.next("rewritten in place and closed", hasImage("web", "nginx:2"), alwaysRunning("web"))
	writeFile(t, dir, "db.yaml", podYAML("db", "redis:7")) // create, write, close
	st.next("created and closed", hasImage("db", "redis:7"), alwaysRunning("web"))
}

// TestWatcherOpenWriteSettles: a file still open for writing is not read
// before it settles, even when its partial content decodes and other files
// are read quickly meanwhile.
func TestWatcherOpenWriteSettles(t *testing.T) {
	dir := t.TempDir()
	setFile(t, dir, "web.yaml", podYAML("web", "nginx:1"), time.Now().Add(-2*time.Hour)) // settled
	st := startWatcher(t, quickOnlyWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	// The first document alone is a valid file; the complete file also
	// holds the pod "extra". Seeing nginx:2 without extra is the defect.
	first := podYAML("web", "nginx:2")
	f, err := os.OpenFile(filepath.Join(dir, "web.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(first); err != nil {
		t.Fatal(err)
	}
	neverPartial := func(s *Set) error {
		if img, _ := podImage(s, "web"); img == "nginx:2" {
			if _, ok := podImage(s, "extra"); !ok {
				return errors.New("the half-written web.yaml was read")
			}
		}
		return alwaysRunning("web")(s)
	}
	// The marker's rename is queued after web.yaml's writes, so its scan
	// knows web.yaml is being written; web.yaml must keep nginx:1.
	renameInto(t, dir, "marker.yaml", podYAML("marker", "busybox"))
	st.next("marker read while web.yaml is open", all(hasImage("marker", "busybox"), hasImage("web", "nginx:1")), neverPartial)

	if _, err := f.WriteString("---\n" + podYAML("extra", "busybox")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st.next("completed and closed", all(hasImage("web", "nginx:2"), hasImage("extra", "busybox")), neverPartial)
}

func renameInto(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".new")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWatcherRenameLatency measures a manifest renamed into place
// until onChange holds it, with the default timing.
func BenchmarkWatcherRenameLatency(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(podYAML("web", "img:0")), 0o644); err != nil {
		b.Fatal(err)
	}
	w := NewWatcher(dir, testOpts, time.Hour, nil)
	images := make(chan string, 100)
	ctx := b.Context()
	go func() {
		_ = w.Run(ctx, func(s *Set) {
			if img, ok := podImage(s, "web"); ok {
				images <- img
			}
		})
	}()
	waitImage(b, images, "img:0")
	var lat []time.Duration
	b.ResetTimer()
	for i := 1; b.Loop(); i++ {
		want := fmt.Sprintf("img:%d", i)
		start := time.Now()
		renameInto(b, dir, "web.yaml", podYAML("web", want))
		waitImage(b, images, want)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

func waitImage(b *testing.B, images <-chan string, want string) {
	b.Helper()
	timeout := time.After(waitBound)
	for {
		select {
		case img := <-images:
			if img == want {
				return
			}
		case <-timeout:
			b.Fatalf("timed out waiting for image %s", want)
		}
	}
}
