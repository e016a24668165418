package podagent

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

// writeGeneration writes a generation directory holding one pod.
func writeGeneration(t *testing.T, image, command string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	doc := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: " + image + "\n    command: [" + command + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "pods", "web.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFleetPodUIDs(t *testing.T) {
	target := &fleetTarget{opts: manifest.Options{NodeName: "board"}}
	uid := func(dir string) string {
		t.Helper()
		set, err := target.read(dir)
		if err != nil {
			t.Fatal(err)
		}
		return string(set.Pods[0].UID)
	}
	base := uid(writeGeneration(t, "app:1", "sleep"))
	if again := uid(writeGeneration(t, "app:1", "sleep")); again != base {
		t.Errorf("the same pod in the next generation: UID %s, want %s (kept: not restarted)", again, base)
	}
	if img := uid(writeGeneration(t, "app:2", "sleep")); img == base {
		t.Errorf("a new image: UID unchanged, want a new one (the pod is replaced, the gate judges the new pod)")
	}
	if cmd := uid(writeGeneration(t, "app:1", "\"true\"")); cmd == base {
		t.Errorf("a new command: UID unchanged, want a new one")
	}
	own, err := manifest.ReadDir(filepath.Join(writeGeneration(t, "app:1", "sleep"), "pods"), manifest.Options{NodeName: "board"})
	if err != nil {
		t.Fatal(err)
	}
	if string(own.Pods[0].UID) == base {
		t.Errorf("a fleet pod has the UID the board's own pod would have; want its own")
	}
}

func TestFleetHealthMatchesTheGenerationsPod(t *testing.T) {
	st := store.New(nil)
	target := &fleetTarget{st: st, opts: manifest.Options{NodeName: "board"}, log: slog.New(slog.DiscardHandler), pods: &podManager{apply: &manifestApplier{}}}
	set, err := target.read(writeGeneration(t, "app:2", "sleep"))
	if err != nil {
		t.Fatal(err)
	}
	target.fleet = set
	// The previous generation's pod of the same name, Ready, in the store.
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "old-uid"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	if err := st.Put(old); err != nil {
		t.Fatal(err)
	}
	if h := target.Health(); len(h) != 1 || h[0].Present || h[0].Ready {
		t.Errorf("health with only the old generation's pod = %+v, want web not present", h)
	}
	cur := old.DeepCopy()
	cur.UID, cur.ResourceVersion = set.Pods[0].UID, ""
	if err := st.Put(cur); err != nil {
		t.Fatal(err)
	}
	if h := target.Health(); len(h) != 1 || !h[0].Present || !h[0].Ready {
		t.Errorf("health with the generation's pod = %+v, want web present and Ready", h)
	}
}
