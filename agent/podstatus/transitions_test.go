package podstatus

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/runtime"
)

func TestTransitionTimesAndStartTime(t *testing.T) {
	pod := newPod(corev1.RestartPolicyAlways)
	first := Compute(Input{Pod: pod, Sandbox: sandbox, Now: at(1)})
	second := Compute(Input{Pod: pod, Sandbox: sandbox, Previous: &first,
		Containers: []runtime.ContainerStatus{running("app", 0, 5)}, Now: at(6)})
	third := Compute(Input{Pod: pod, Sandbox: sandbox, Previous: &second,
		Containers: []runtime.ContainerStatus{running("app", 0, 5)}, Now: at(60)})

	times := func(s corev1.PodStatus) map[corev1.PodConditionType]metav1.Time {
		out := map[corev1.PodConditionType]metav1.Time{}
		for _, c := range s.Conditions {
			out[c.Type] = c.LastTransitionTime
		}
		return out
	}
	want := map[corev1.PodConditionType]metav1.Time{
		corev1.PodReadyToStartContainers: mt(1),
		corev1.PodInitialized:            mt(1),
		corev1.PodReady:                  mt(6), // False -> True at 6
		corev1.ContainersReady:           mt(6),
		corev1.PodScheduled:              mt(1),
	}
	if diff := cmp.Diff(want, times(third)); diff != "" {
		t.Errorf("lastTransitionTime (-want +got):\n%s", diff)
	}
	if !third.StartTime.Equal(ptr(mt(1))) {
		t.Errorf("startTime = %v, want %v", third.StartTime, mt(1))
	}
}

func TestVanishedRunningContainer(t *testing.T) {
	pod := newPod(corev1.RestartPolicyAlways)
	prev := Compute(Input{Pod: pod, Sandbox: sandbox, Containers: []runtime.ContainerStatus{running("app", 0, 1)}, Now: at(2)})
	got := Compute(Input{Pod: pod, Sandbox: sandbox, Previous: &prev, Now: at(3)})
	want := []string{"app: waiting ContainerCreating (last terminated ContainerStatusUnknown 137) restarts=1"}
	if diff := cmp.Diff(want, summarize(got).Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
}

func TestReadinessHook(t *testing.T) {
	pod := newPod(corev1.RestartPolicyAlways)
	got := Compute(Input{Pod: pod, Sandbox: sandbox, Containers: []runtime.ContainerStatus{running("app", 0, 1)}, Now: at(2),
		Ready: func(*corev1.Container, runtime.ContainerStatus) bool { return false }})
	want := summary{Phase: corev1.PodRunning,
		Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
		Containers: []string{"app: running restarts=0"}}
	if diff := cmp.Diff(want, summarize(got)); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestStartErrorNeverStarted(t *testing.T) {
	c := exited("app", 0, 1, 1, 128)
	c.StartedAt = time.Time{}
	c.Reason, c.Message = "StartError", "exec: nope"
	got := Compute(Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox, Containers: []runtime.ContainerStatus{c}, Now: at(2)})
	want := &corev1.ContainerStateTerminated{
		ExitCode: 128, Reason: "StartError", Message: "exec: nope",
		StartedAt: metav1.NewTime(time.Unix(0, 0).UTC()), FinishedAt: mt(1), ContainerID: "containerd://app-a",
	}
	if diff := cmp.Diff(want, got.ContainerStatuses[0].State.Terminated); diff != "" {
		t.Errorf("terminated (-want +got):\n%s", diff)
	}
}

// TestQOSClass: the published status carries the pod's QoS class
// (agent/resources has the classification's own tests).
func TestQOSClass(t *testing.T) {
	tests := []struct {
		name string
		req  string
		lim  string
		want corev1.PodQOSClass
	}{
		{"no resources", "", "", corev1.PodQOSBestEffort},
		{"requests only", "100m", "", corev1.PodQOSBurstable},
		{"limits equal requests", "100m", "100m", corev1.PodQOSGuaranteed},
		{"limits above requests", "100m", "200m", corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compute(Input{Pod: newPod(corev1.RestartPolicyAlways, withResources(tt.req, tt.lim))}).QOSClass; got != tt.want {
				t.Errorf("QOSClass = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("one container without limits", func(t *testing.T) {
		p := newPod(corev1.RestartPolicyAlways, withContainers("a", "b"), withResources("100m", "100m"))
		if got := Compute(Input{Pod: p}).QOSClass; got != corev1.PodQOSBurstable {
			t.Errorf("QOSClass = %s, want Burstable", got)
		}
	})
}
