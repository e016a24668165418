package podstatus

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// withSidecar adds a restartable init container (restartPolicy Always).
func withSidecar(name string) podOpt {
	return func(p *corev1.Pod) {
		always := corev1.ContainerRestartPolicyAlways
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: name, Image: "busybox:1.36", RestartPolicy: &always})
	}
}

func TestComputeSidecars(t *testing.T) {
	const sidecarBackoff = "back-off 10s restarting failed container=proxy pod=web_default(uid-1)"
	tests := []struct {
		name string
		in   Input
		want summary
	}{
		{
			name: "nothing created yet",
			in:   Input{Pod: newPod(corev1.RestartPolicyAlways, withSidecar("proxy"))},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("False", "False ContainersNotInitialized: containers with incomplete status: [proxy]",
					"False ContainersNotReady: containers with unready status: [proxy app]", "False ContainersNotReady: containers with unready status: [proxy app]"),
				Init:       []string{"proxy: waiting PodInitializing restarts=0"},
				Containers: []string{"app: waiting PodInitializing restarts=0"}},
		},
		{
			name: "sidecar started, app not yet: Initialized, Pending",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withSidecar("proxy")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(running("proxy", 0, 1))}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Init:       []string{"proxy: running restarts=0 ready"},
				Containers: []string{"app: waiting PodInitializing restarts=0"}},
		},
		{
			name: "sidecar and app running: Running and Ready",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withSidecar("proxy")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(running("proxy", 0, 1)), running("app", 0, 2)}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "True", "True"),
				Init:       []string{"proxy: running restarts=0 ready"},
				Containers: []string{"app: running restarts=0 ready"}},
		},
		{
			name: "sidecar crashed under Never: restarted, waiting CrashLoopBackOff, not ready",
			in: Input{Pod: newPod(corev1.RestartPolicyNever, withSidecar("proxy")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(exited("proxy", 0, 1, 5, 0)), running("app", 0, 2)},
				Waiting:    map[string]Waiting{"proxy": {Reason: "CrashLoopBackOff", Message: sidecarBackoff}}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [proxy]", "False ContainersNotReady: containers with unready status: [proxy]"),
				Init:       []string{"proxy: waiting CrashLoopBackOff: " + sidecarBackoff + " (last terminated Completed 0) restarts=0"},
				Containers: []string{"app: running restarts=0 ready"}},
		},
		{
			name: "app done under Never, sidecar still running: Running",
			in: Input{Pod: newPod(corev1.RestartPolicyNever, withSidecar("proxy")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(running("proxy", 0, 1)), exited("app", 0, 2, 5, 0)}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Init:       []string{"proxy: running restarts=0 ready"},
				Containers: []string{"app: terminated Completed 0 restarts=0"}},
		},
		{
			name: "app done under Never, sidecar stopped: Succeeded",
			in: Input{Pod: newPod(corev1.RestartPolicyNever, withSidecar("proxy")), Sandbox: sandbox, SandboxStopped: true,
				Containers: []runtime.ContainerStatus{initC(exited("proxy", 0, 1, 6, 137)), exited("app", 0, 2, 5, 0)}},
			want: summary{Phase: corev1.PodSucceeded,
				Conditions: conds("False", "True PodCompleted", "False PodCompleted", "False PodCompleted"),
				Init:       []string{"proxy: terminated Error 137 restarts=0"},
				Containers: []string{"app: terminated Completed 0 restarts=0"}},
		},
		{
			name: "app failed under Never, sidecar stopped: Failed",
			in: Input{Pod: newPod(corev1.RestartPolicyNever, withSidecar("proxy")), Sandbox: sandbox, SandboxStopped: true,
				Containers: []runtime.ContainerStatus{initC(exited("proxy", 0, 1, 6, 0)), exited("app", 0, 2, 5, 3)}},
			want: summary{Phase: corev1.PodFailed,
				Conditions: conds("False", "True", "False PodFailed", "False PodFailed"),
				Init:       []string{"proxy: terminated Completed 0 restarts=0"},
				Containers: []string{"app: terminated Error 3 restarts=0"}},
		},
		{
			name: "regular init after a sidecar still running: Pending, not Initialized",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withSidecar("proxy"), withInit("setup")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(running("proxy", 0, 1)), initC(running("setup", 0, 2))}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "False ContainersNotInitialized: containers with incomplete status: [setup]",
					"False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Init:       []string{"proxy: running restarts=0 ready", "setup: running restarts=0"},
				Containers: []string{"app: waiting PodInitializing restarts=0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = at(10)
			if diff := cmp.Diff(tt.want, summarize(Compute(tt.in))); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
