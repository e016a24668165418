package manifest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A save that would write an object as it already is (kubectl label with
// the value the pod has, a patch that changes nothing) touches nothing: the
// person's file keeps its text, its inode and its modification time, and
// nothing is delivered; a real change after it is still written.
func TestApplyOfAnUnchangedObjectWritesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", twoPods)
	path := filepath.Join(dir, "pods.yaml")
	w := newTestWatcher(dir)
	st := startWatcher(t, w)
	st.next("initial set", all(hasImage("web", "nginx"), noErrors), nil)
	ctx := context.Background()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	snap := refresh(t, w)
	same := podIn(snap.Set, "web").DeepCopy()
	same.ResourceVersion = "42" // the store's fields are not written
	same.Status.Phase = "Running"
	if _, err := w.Apply(ctx, snap, []Change{{Key: podKey("web"), Object: same}}); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, dir, "pods.yaml"); got != twoPods {
		t.Errorf("pods.yaml after an unchanged save = %q, want the person's text %q", got, twoPods)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("pods.yaml was rewritten by an unchanged save (inode or mtime changed)")
	}
	select {
	case s := <-st.ch:
		t.Errorf("an unchanged save delivered a Set: %+v", summarize(s))
	default:
	}

	if _, err := w.Apply(ctx, snap, []Change{{Key: podKey("web"), Object: labelled(t, snap.Set, "web")}}); err != nil {
		t.Fatal(err)
	}
	if p := podIn(st.delivered(t), "web"); p.Labels["env"] != "debug" {
		t.Errorf("web after a real change: labels %v, want env=debug", p.Labels)
	}
}
