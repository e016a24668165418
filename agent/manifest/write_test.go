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

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func refresh(t *testing.T, w *Watcher) *Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	snap, err := w.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func podIn(s *Set, name string) *corev1.Pod {
	for _, p := range s.Pods {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// labelled is the Set's pod with a label added, as the API would save it.
func labelled(t *testing.T, s *Set, name string) *corev1.Pod {
	t.Helper()
	p := podIn(s, name)
	if p == nil {
		t.Fatalf("the Set holds no pod %s: %+v", name, summarize(s))
	}
	p = p.DeepCopy()
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels["env"] = "debug"
	return p
}

const twoPods = "# web and db\n" + "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: main\n    image: nginx\n" +
	"---\n# the database\n" + "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\nspec:\n  containers:\n  - name: main\n    image: postgres\n"

func TestApplyChecksTheFileAgainstWhatWasRead(t *testing.T) {
	edited := strings.Replace(twoPods, "image: postgres", "image: postgres:17", 1)
	tests := []struct {
		name string
		// before and after the Refresh, a person writes pods.yaml
		beforeRefresh, afterRefresh string
		wantConflict                string // the ConflictError's reason; "" for success
		wantFile                    func(t *testing.T, got string)
	}{
		{
			name:         "edited between Refresh and Apply",
			afterRefresh: edited,
			wantConflict: reasonChanged,
			wantFile:     func(t *testing.T, got string) { equal(t, edited, got) },
		},
		{
			name:          "edited before Refresh",
			beforeRefresh: edited,
			wantFile: func(t *testing.T, got string) {
				if !strings.Contains(got, "image: postgres:17") || !strings.Contains(got, "env: debug") {
					t.Errorf("the file lost the person's edit or the API's:\n%s", got)
				}
				if !strings.HasSuffix(got, "---\n# the database\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db\nspec:\n  containers:\n  - name: main\n    image: postgres:17\n") {
					t.Errorf("db's document is not byte for byte what the person wrote:\n%s", got)
				}
			},
		},
		{
			name:         "half-written",
			afterRefresh: twoPods[:len(twoPods)-30] + "\n  x: [",
			wantConflict: reasonChanged,
			wantFile:     func(t *testing.T, got string) { equal(t, twoPods[:len(twoPods)-30]+"\n  x: [", got) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "pods.yaml", twoPods)
			w := newTestWatcher(dir)
			st := startWatcher(t, w)
			st.next("initial set", all(hasImage("db", "postgres"), noErrors), nil)
			if tt.beforeRefresh != "" {
				writeFile(t, dir, "pods.yaml", tt.beforeRefresh)
			}
			snap := refresh(t, w)
			if tt.afterRefresh != "" {
				writeFile(t, dir, "pods.yaml", tt.afterRefresh)
			}
			_, err := w.Apply(context.Background(), snap, []Change{{Key: podKey("web"), Object: labelled(t, snap.Set, "web")}})
			var ce *ConflictError
			switch {
			case tt.wantConflict == "" && err != nil:
				t.Fatalf("Apply: %v", err)
			case tt.wantConflict != "" && !errors.As(err, &ce):
				t.Fatalf("Apply: err = %v, want a ConflictError", err)
			case tt.wantConflict != "" && (ce.Reason != tt.wantConflict || ce.File != "pods.yaml"):
				t.Errorf("Apply: conflict %q on %s, want %q on pods.yaml", ce.Reason, ce.File, tt.wantConflict)
			}
			tt.wantFile(t, readFile(t, dir, "pods.yaml"))
		})
	}
}

func equal(t *testing.T, want, got string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
}

// TestApplyNeverRewritesABrokenFile: a file that no longer decodes as a
// whole keeps its last good objects in the Set, but the API refuses to
// write over it.
func TestApplyNeverRewritesABrokenFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", twoPods)
	w := newTestWatcher(dir)
	st := startWatcher(t, w)
	st.next("initial set", all(hasImage("web", "nginx"), noErrors), nil)
	broken := twoPods + "---\nmetadata: {name: [\n"
	setFile(t, dir, "pods.yaml", broken, time.Now().Add(-time.Hour))
	snap := refresh(t, w)
	if podIn(snap.Set, "web") == nil || len(snap.Set.Errors) == 0 {
		t.Fatalf("the Set should keep web and report the broken file: %+v", summarize(snap.Set))
	}
	_, err := w.Apply(context.Background(), snap, []Change{{Key: podKey("web"), Object: labelled(t, snap.Set, "web")}})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Reason != reasonBroken || ce.File != "pods.yaml" {
		t.Fatalf("Apply: err = %v, want the broken-file conflict naming pods.yaml", err)
	}
	equal(t, broken, readFile(t, dir, "pods.yaml"))
}

// TestApplyWritesAppliesAndIsNotReadAgain: a new object gets its own file,
// a change is applied before Apply returns, the removal of a file's last
// object removes the file, and the watcher's own later read of the files
// the API wrote delivers nothing.
func TestApplyWritesAppliesAndIsNotReadAgain(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", twoPods)
	w := newTestWatcher(dir)
	st := startWatcher(t, w)
	st.next("initial set", all(hasImage("web", "nginx"), noErrors), nil)
	ctx := context.Background()

	snap := refresh(t, w)
	fresh := Decode("x.yaml", []byte(podYAML("new", "busybox")), testOpts).Pods[0]
	uid := podIn(snap.Set, "web").UID
	snap, err := w.Apply(ctx, snap, []Change{
		{Key: podKey("new"), Object: fresh},
		{Key: podKey("web"), Object: labelled(t, snap.Set, "web")},
	})
	if err != nil {
		t.Fatal(err)
	}
	applied := st.delivered(t)
	if podIn(applied, "new") == nil {
		t.Fatalf("the Set delivered by Apply lacks the new pod: %+v", summarize(applied))
	}
	if p := podIn(applied, "web"); p.Labels["env"] != "debug" || p.UID != uid {
		t.Errorf("web after labelling: labels %v uid %s, want env=debug and the same uid %s", p.Labels, p.UID, uid)
	}
	if got := readFile(t, dir, "pod_default_new.yaml"); got != mustRender(t, fresh) {
		t.Errorf("pod_default_new.yaml = %q, want %q", got, mustRender(t, fresh))
	}

	// Remove the new pod: its file goes.
	if _, err := w.Apply(ctx, snap, []Change{{Key: podKey("new")}}); err != nil {
		t.Fatal(err)
	}
	if s := st.delivered(t); podIn(s, "new") != nil {
		t.Errorf("the Set delivered by the removal still holds new: %+v", summarize(s))
	}
	if _, err := os.Stat(filepath.Join(dir, "pod_default_new.yaml")); !os.IsNotExist(err) {
		t.Errorf("pod_default_new.yaml after its last object's removal: %v, want it gone", err)
	}

	// The watcher reads the API's files again when something else changes;
	// the only Set it delivers is the one with that other change.
	writeFile(t, dir, "zz.yaml", podYAML("zz", "busybox"))
	st.next("an unrelated file", hasImage("zz", "busybox"), func(s *Set) error {
		if podIn(s, "zz") == nil {
			return fmt.Errorf("a Set without zz was delivered after the API's writes: %+v", summarize(s))
		}
		return nil
	})
}

// delivered is the Set onChange already received, which must be there: the
// API's reads and writes are applied before Refresh or Apply returns.
func (st *setStream) delivered(t *testing.T) *Set {
	t.Helper()
	select {
	case s := <-st.ch:
		st.lastHash = s.Hash()
		return s
	default:
		t.Fatal("Refresh or Apply returned before onChange received the new Set")
		return nil
	}
}

// TestRefreshReadsNow: Refresh reads and delivers a person's edit itself,
// before it returns, without waiting for the watcher's own scan (which
// here would come only in an hour).
func TestRefreshReadsNow(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", twoPods)
	w := newTestWatcher(dir)
	w.debounce, w.quick = time.Hour, time.Hour
	st := startWatcher(t, w)
	st.next("initial set", all(hasImage("db", "postgres"), noErrors), nil)
	writeFile(t, dir, "pods.yaml", strings.Replace(twoPods, "image: postgres", "image: postgres:17", 1))
	snap := refresh(t, w)
	if p := podIn(snap.Set, "db"); p == nil || p.Spec.Containers[0].Image != "postgres:17" {
		t.Fatalf("Refresh's Set lacks the edit: %+v", summarize(snap.Set))
	}
	if s := st.delivered(t); podIn(s, "db").Spec.Containers[0].Image != "postgres:17" {
		t.Errorf("the Set delivered before Refresh returned lacks the edit")
	}
}
