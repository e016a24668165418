package manifest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests use real files, inotify and the real clock. They never assert
// by sleeping: they wait, with a bound, for the Set they expect to arrive on
// a channel, and check an invariant on every Set that arrives before it.

const waitBound = 10 * time.Second

type setStream struct {
	t        *testing.T
	ch       chan *Set
	lastHash string
}

func startWatcher(t *testing.T, w *Watcher) *setStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := &setStream{t: t, ch: make(chan *Set, 1000)}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(s *Set) { st.ch <- s }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil after cancel", err)
			}
		case <-time.After(waitBound):
			t.Errorf("Run did not return after cancel")
		}
	})
	return st
}

// next waits for a Set satisfying want; every Set before it must satisfy
// invariant (nil: anything goes). Consecutive Sets must differ.
func (st *setStream) next(what string, want, invariant func(*Set) error) *Set {
	st.t.Helper()
	timeout := time.After(waitBound)
	var lastErr error
	for {
		select {
		case s := <-st.ch:
			h := s.Hash()
			if h == st.lastHash {
				st.t.Fatalf("onChange called twice with the same Set: %+v", summarize(s))
			}
			st.lastHash = h
			if invariant != nil {
				if err := invariant(s); err != nil {
					st.t.Fatalf("while waiting for %s: invariant broken: %v; set %+v", what, err, summarize(s))
				}
			}
			if lastErr = want(s); lastErr == nil {
				return s
			}
		case <-timeout:
			st.t.Fatalf("timed out waiting for %s; last mismatch: %v", what, lastErr)
			return nil
		}
	}
}

func podImage(s *Set, name string) (string, bool) {
	for _, p := range s.Pods {
		if p.Name == name {
			return p.Spec.Containers[0].Image, true
		}
	}
	return "", false
}

func hasImage(name, image string) func(*Set) error {
	return func(s *Set) error {
		if got, ok := podImage(s, name); !ok || got != image {
			return fmt.Errorf("pod %s image %q (present %v), want %q", name, got, ok, image)
		}
		return nil
	}
}

func noErrors(s *Set) error {
	if len(s.Errors) > 0 {
		return s.Errors[0]
	}
	return nil
}

func all(checks ...func(*Set) error) func(*Set) error {
	return func(s *Set) error {
		return errors.Join(func() []error {
			var errs []error
			for _, c := range checks {
				errs = append(errs, c(s))
			}
			return errs
		}()...)
	}
}

// always requires pod name to be present (with any image) and no errors.
func alwaysRunning(name string) func(*Set) error {
	return func(s *Set) error {
		if _, ok := podImage(s, name); !ok {
			return fmt.Errorf("pod %s is missing", name)
		}
		return noErrors(s)
	}
}

func newTestWatcher(dir string) *Watcher {
	return NewWatcher(dir, testOpts, time.Hour, nil)
}

func TestWatcherAddChangeRemove(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	st := startWatcher(t, newTestWatcher(dir))
	st.next("initial set", all(hasImage("web", "nginx:1"), noErrors), nil)

	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1")) // same content: no call
	writeFile(t, dir, "db.yaml", podYAML("db", "redis:7"))
	st.next("db added", all(hasImage("web", "nginx:1"), hasImage("db", "redis:7")), alwaysRunning("web"))

	writeFile(t, dir, "db.yaml", podYAML("db", "redis:8"))
	st.next("db changed", hasImage("db", "redis:8"), alwaysRunning("web"))

	if err := os.Remove(filepath.Join(dir, "db.yaml")); err != nil {
		t.Fatal(err)
	}
	st.next("db removed", func(s *Set) error {
		if _, ok := podImage(s, "db"); ok {
			return errors.New("db still there")
		}
		return nil
	}, alwaysRunning("web"))

	// A document deleted from a file removes its objects.
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1")+"---\n"+podYAML("extra", "busybox"))
	st.next("extra added", hasImage("extra", "busybox"), alwaysRunning("web"))
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	st.next("extra removed", func(s *Set) error {
		if len(s.Pods) != 1 {
			return fmt.Errorf("%d pods", len(s.Pods))
		}
		return nil
	}, alwaysRunning("web"))
}

func TestWatcherRenameIntoPlace(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	st := startWatcher(t, newTestWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	writeFile(t, dir, ".web.yaml.new", podYAML("web", "nginx:2"))
	if err := os.Rename(filepath.Join(dir, ".web.yaml.new"), filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	st.next("new image", hasImage("web", "nginx:2"), alwaysRunning("web"))
}

func TestWatcherInPlacePartialWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.yaml")
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	st := startWatcher(t, newTestWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	// A slow writer: the first half is not YAML on its own.
	full := "{apiVersion: v1, kind: Pod, metadata: {name: web}, spec: {containers: [{name: main, image: \"nginx:2\"}]}}\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(full[:40]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // the writer pauses past the debounce, within the settle time
	if _, err := f.WriteString(full[40:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// The half-written file must never have been reported nor stopped the pod.
	st.next("completed write", hasImage("web", "nginx:2"), alwaysRunning("web"))
}

func TestWatcherBrokenFileKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	writeFile(t, dir, "other.yaml", podYAML("other", "busybox"))
	st := startWatcher(t, newTestWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	stillThere := func(s *Set) error {
		_, ok := podImage(s, "web")
		if !ok {
			return errors.New("web was dropped")
		}
		return nil
	}
	writeFile(t, dir, "web.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web\n") // truncated for good
	st.next("syntax error reported, pod kept", all(hasImage("web", "nginx:1"), func(s *Set) error {
		if len(s.Errors) != 1 || s.Errors[0].File != "web.yaml" || !strings.Contains(s.Errors[0].Error(), "invalid YAML") {
			return fmt.Errorf("errors %v", summarize(s).Errors)
		}
		return nil
	}), stillThere)

	writeFile(t, dir, "web.yaml", "")
	st.next("empty file reported, pod kept", all(hasImage("web", "nginx:1"), func(s *Set) error {
		if len(s.Errors) != 1 || s.Errors[0].Index != -1 || !strings.Contains(s.Errors[0].Error(), "file is empty") {
			return fmt.Errorf("errors %v", summarize(s).Errors)
		}
		return nil
	}), stillThere)

	// A file that decodes but whose document is invalid is not "broken":
	// its pod goes (the user wrote an invalid pod, not half a file).
	writeFile(t, dir, "web.yaml", podYAML("web", ""))
	st.next("invalid pod rejected", func(s *Set) error {
		if _, ok := podImage(s, "web"); ok || len(s.Errors) != 1 || s.Errors[0].Field != "spec.containers[0].image" {
			return fmt.Errorf("set %+v", summarize(s))
		}
		return nil
	}, nil)

	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:3"))
	st.next("fixed", all(hasImage("web", "nginx:3"), noErrors), nil)
	if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	st.next("file removed", func(s *Set) error {
		if _, ok := podImage(s, "web"); ok {
			return errors.New("web still there")
		}
		return hasImage("other", "busybox")(s)
	}, nil)
}

// TestWatcherVimSave replays vim's default write: probe file 4913, swap
// file, original renamed to a backup, new file written, backup removed.
func TestWatcherVimSave(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	st := startWatcher(t, newTestWatcher(dir))
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	p := func(name string) string { return filepath.Join(dir, name) }
	writeFile(t, dir, ".web.yaml.swp", "binary swap \x00 content: [")
	writeFile(t, dir, "4913", "")
	if err := os.Remove(p("4913")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("web.yaml"), p("web.yaml~")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:2"))
	if err := os.Remove(p("web.yaml~")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p(".web.yaml.swp")); err != nil {
		t.Fatal(err)
	}
	st.next("new image", hasImage("web", "nginx:2"), alwaysRunning("web"))
}

func TestWatcherResync(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	w := NewWatcher(dir, testOpts, 200*time.Millisecond, nil)
	w.debounce = time.Hour // inotify events lead nowhere: only the resync can see changes
	st := startWatcher(t, w)
	st.next("initial set", hasImage("web", "nginx:1"), nil)

	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:2"))
	st.next("change seen by resync", hasImage("web", "nginx:2"), alwaysRunning("web"))
}

func TestWatcherMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pods")
	w := newTestWatcher(dir)
	w.retry = 50 * time.Millisecond
	st := startWatcher(t, w)
	st.next("directory error", func(s *Set) error {
		if len(s.Errors) != 1 || s.Errors[0].Index != -1 || s.Errors[0].File != dir || !errors.Is(s.Errors[0].Err, os.ErrNotExist) {
			return fmt.Errorf("errors %v", summarize(s).Errors)
		}
		return nil
	}, nil)

	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	st.next("directory appeared", all(hasImage("web", "nginx:1"), noErrors), nil)

	// Once watched, changes arrive through inotify again.
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:2"))
	st.next("watched", hasImage("web", "nginx:2"), alwaysRunning("web"))
}
