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

func TestPodHealth(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	crashed := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", ExitCode: 0}}
	backoff := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	pod := func(policy corev1.RestartPolicy, phase corev1.PodPhase, ready bool, cs ...corev1.ContainerStatus) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.PodSpec{RestartPolicy: policy},
			Status: corev1.PodStatus{Phase: phase, ContainerStatuses: cs}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		return p
	}
	for _, tc := range []struct {
		name          string
		pod           *corev1.Pod
		ready         bool
		exited        string
		restarts      int32
		reason, phase string
	}{
		{name: "running and ready", pod: pod(corev1.RestartPolicyAlways, corev1.PodRunning, true, corev1.ContainerStatus{Name: "app", Ready: true, State: running}), ready: true},
		{name: "stale Ready condition, container exited", pod: pod(corev1.RestartPolicyAlways, corev1.PodRunning, true, corev1.ContainerStatus{Name: "app", Ready: false, State: crashed, RestartCount: 2}),
			exited: "container app exited (Error, exit code 1)", restarts: 2, reason: "Error"},
		{name: "crash loop back-off", pod: pod(corev1.RestartPolicyAlways, corev1.PodRunning, false, corev1.ContainerStatus{Name: "app", State: backoff,
			LastTerminationState: crashed, RestartCount: 1}), exited: "container app exited (Error, exit code 1)", restarts: 1, reason: "CrashLoopBackOff"},
		{name: "OnFailure, one container done, one running", pod: pod(corev1.RestartPolicyOnFailure, corev1.PodRunning, false,
			corev1.ContainerStatus{Name: "init-like", State: done}, corev1.ContainerStatus{Name: "app", Ready: true, State: running}), reason: "Completed"},
		{name: "OnFailure, failed", pod: pod(corev1.RestartPolicyOnFailure, corev1.PodRunning, false, corev1.ContainerStatus{Name: "app", State: crashed}),
			exited: "container app exited (Error, exit code 1)", reason: "Error"},
		{name: "Never, succeeded", pod: pod(corev1.RestartPolicyNever, corev1.PodSucceeded, false, corev1.ContainerStatus{Name: "app", State: done})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := podHealth(tc.pod)
			if h.Ready != tc.ready || h.Exited != tc.exited || h.Restarts != tc.restarts || (tc.reason != "" && h.Reason != tc.reason) {
				t.Errorf("podHealth = %+v, want ready %v, exited %q, restarts %d, reason %q", h, tc.ready, tc.exited, tc.restarts, tc.reason)
			}
		})
	}
}
