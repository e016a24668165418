package podagent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The instance `kubectl logs [--previous]` reads, as kubelet's
// validateContainerLogStatus picks it, among the attempts whose logs the
// runtime keeps (the current and the previous instance).
func TestPickAttempt(t *testing.T) {
	terminated := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	status := func(state corev1.ContainerState, last corev1.ContainerState) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: state, LastTerminationState: last},
			}},
		}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	backOff := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	creating := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		attempts []int
		previous bool
		want     int
		wantErr  string
	}{
		{name: "running", pod: status(running, terminated), attempts: []int{3, 4}, want: 4},
		{name: "running, previous", pod: status(running, terminated), attempts: []int{3, 4}, previous: true, want: 3},
		{name: "first instance, previous", pod: status(running, corev1.ContainerState{}), attempts: []int{0}, previous: true,
			wantErr: `previous terminated container "app" in pod "web" not found`},
		// In CrashLoopBackOff the latest instance exited and the one
		// before it was removed with its log: lastState is the latest.
		{name: "crash loop back-off", pod: status(backOff, terminated), attempts: []int{3}, want: 3},
		{name: "crash loop back-off, previous", pod: status(backOff, terminated), attempts: []int{3}, previous: true, want: 3},
		{name: "finished", pod: status(terminated, terminated), attempts: []int{1, 2}, previous: true, want: 1},
		{name: "no log yet", pod: status(creating, corev1.ContainerState{}),
			wantErr: `container "app" in pod "web" is waiting to start: ContainerCreating`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickAttempt(tc.pod, "app", tc.attempts, tc.previous)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("pickAttempt = %d, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("pickAttempt = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
