package podstatus

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

func ptr[T any](v T) *T { return &v }

// TestComputeRunningFull checks every field of a plain running pod.
func TestComputeRunningFull(t *testing.T) {
	got := Compute(Input{
		Pod:        newPod(corev1.RestartPolicyAlways),
		Sandbox:    sandbox,
		Containers: []runtime.ContainerStatus{running("app", 0, 1)},
		HostIP:     "192.168.1.10",
		Now:        at(2).Add(300e6),
	})
	now := mt(2)
	want := corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		HostIP:    "192.168.1.10",
		HostIPs:   []corev1.HostIP{{IP: "192.168.1.10"}},
		PodIP:     "10.88.0.5",
		PodIPs:    []corev1.PodIP{{IP: "10.88.0.5"}},
		StartTime: &now,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:        "app",
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: mt(1)}},
			Ready:       true,
			Started:     ptr(true),
			Image:       "busybox:1.36",
			ImageID:     img.ID,
			ContainerID: "containerd://app-a",
		}},
		QOSClass: corev1.PodQOSBestEffort,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// summary is the part of a status the behaviour tables compare.
type summary struct {
	Phase      corev1.PodPhase
	Conditions []string // "Type=Status Reason: Message"
	Init       []string
	Containers []string
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return "terminated " + s.Terminated.Reason + " " + itoa(s.Terminated.ExitCode)
	case s.Waiting != nil:
		out := "waiting " + s.Waiting.Reason
		if s.Waiting.Message != "" {
			out += ": " + s.Waiting.Message
		}
		return out
	}
	return "none"
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func containerLine(c corev1.ContainerStatus) string {
	line := c.Name + ": " + stateString(c.State)
	if c.LastTerminationState != (corev1.ContainerState{}) {
		line += " (last " + stateString(c.LastTerminationState) + ")"
	}
	line += " restarts=" + itoa(c.RestartCount)
	if c.Ready {
		line += " ready"
	}
	return line
}

func summarize(s corev1.PodStatus) summary {
	out := summary{Phase: s.Phase}
	for _, c := range s.Conditions {
		line := string(c.Type) + "=" + string(c.Status)
		if c.Reason != "" {
			line += " " + c.Reason
		}
		if c.Message != "" {
			line += ": " + c.Message
		}
		out.Conditions = append(out.Conditions, line)
	}
	for _, c := range s.InitContainerStatuses {
		out.Init = append(out.Init, containerLine(c))
	}
	for _, c := range s.ContainerStatuses {
		out.Containers = append(out.Containers, containerLine(c))
	}
	return out
}

func conds(readyToStart, initialized, ready, containersReady string) []string {
	return []string{
		"PodReadyToStartContainers=" + readyToStart,
		"Initialized=" + initialized,
		"Ready=" + ready,
		"ContainersReady=" + containersReady,
		"PodScheduled=True",
	}
}

const backoffMsg = "back-off 10s restarting failed container=app pod=web_default(uid-1)"

func TestComputeBehaviour(t *testing.T) {
	deleting := func(p *corev1.Pod) { p.DeletionTimestamp = ptr(mt(100)) }
	tests := []struct {
		name string
		in   Input
		want summary
	}{
		{
			name: "nothing created yet",
			in:   Input{Pod: newPod(corev1.RestartPolicyAlways)},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("False", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: waiting ContainerCreating restarts=0"}},
		},
		{
			name: "two containers, one running",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withContainers("a", "b")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{running("b", 0, 1)}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [a]", "False ContainersNotReady: containers with unready status: [a]"),
				Containers: []string{"a: waiting ContainerCreating restarts=0", "b: running restarts=0 ready"}},
		},
		{
			name: "completed with Never: Succeeded",
			in: Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox, SandboxStopped: true,
				Containers: []runtime.ContainerStatus{exited("app", 0, 1, 5, 0)}},
			want: summary{Phase: corev1.PodSucceeded,
				Conditions: conds("False", "True PodCompleted", "False PodCompleted", "False PodCompleted"),
				Containers: []string{"app: terminated Completed 0 restarts=0"}},
		},
		{
			name: "completed with OnFailure: Succeeded",
			in: Input{Pod: newPod(corev1.RestartPolicyOnFailure), Sandbox: sandbox, SandboxStopped: true,
				Containers: []runtime.ContainerStatus{exited("app", 2, 1, 5, 0), exited("app", 1, 0, 1, 3)}},
			want: summary{Phase: corev1.PodSucceeded,
				Conditions: conds("False", "True PodCompleted", "False PodCompleted", "False PodCompleted"),
				Containers: []string{"app: terminated Completed 0 (last terminated Error 3) restarts=2"}},
		},
		{
			name: "failed with Never: Failed",
			in: Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox, SandboxStopped: true,
				Containers: []runtime.ContainerStatus{exited("app", 0, 1, 5, 2)}},
			want: summary{Phase: corev1.PodFailed,
				Conditions: conds("False", "True", "False PodFailed", "False PodFailed"),
				Containers: []string{"app: terminated Error 2 restarts=0"}},
		},
		{
			name: "failed with OnFailure, restarting: Running",
			in: Input{Pod: newPod(corev1.RestartPolicyOnFailure), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{exited("app", 0, 1, 5, 2)},
				Waiting:    map[string]Waiting{"app": {Reason: "CrashLoopBackOff", Message: backoffMsg}}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: waiting CrashLoopBackOff: " + backoffMsg + " (last terminated Error 2) restarts=0"}},
		},
		{
			name: "crash loop with Always: Running, waiting CrashLoopBackOff",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{exited("app", 3, 30, 31, 1), exited("app", 2, 20, 21, 1)},
				Waiting:    map[string]Waiting{"app": {Reason: "CrashLoopBackOff", Message: backoffMsg}}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: waiting CrashLoopBackOff: " + backoffMsg + " (last terminated Error 1) restarts=3"}},
		},
		{
			name: "exit 0 with Always and no reason cached yet: terminated, Running",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{exited("app", 0, 1, 2, 0)}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: terminated Completed 0 restarts=0"}},
		},
		{
			name: "restarted and running: lastState from the previous instance",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{running("app", 1, 12), exited("app", 0, 1, 2, 137)}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "True", "True"),
				Containers: []string{"app: running (last terminated Error 137) restarts=1 ready"}},
		},
		{
			name: "OOM killed: OOMKilled wins",
			in: Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{func() runtime.ContainerStatus {
					c := exited("app", 0, 1, 5, 137)
					c.OOMKilled = true
					return c
				}()}},
			want: summary{Phase: corev1.PodFailed,
				Conditions: conds("True", "True", "False PodFailed", "False PodFailed"),
				Containers: []string{"app: terminated OOMKilled 137 restarts=0"}},
		},
		{
			name: "start error with Always: RunContainerError, lastState StartError",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{func() runtime.ContainerStatus {
					c := exited("app", 0, 1, 1, 128)
					c.Reason, c.Message = "StartError", "exec: nope"
					return c
				}()},
				Waiting: map[string]Waiting{"app": {Reason: "RunContainerError", Message: "exec: nope"}}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: waiting RunContainerError: exec: nope (last terminated StartError 128) restarts=0"}},
		},
		{
			name: "image pull error",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways), Sandbox: sandbox,
				Waiting: map[string]Waiting{"app": {Reason: "ErrImagePull", Message: "busybox:1.36: not found"}}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: waiting ErrImagePull: busybox:1.36: not found restarts=0"}},
		},
		{
			name: "image pull backoff",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways), Sandbox: sandbox,
				Waiting: map[string]Waiting{"app": {Reason: "ImagePullBackOff", Message: `Back-off pulling image "busybox:1.36": ErrImagePull: not found`}}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{`app: waiting ImagePullBackOff: Back-off pulling image "busybox:1.36": ErrImagePull: not found restarts=0`}},
		},
		{
			name: "image never pulled",
			in: Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox,
				Waiting: map[string]Waiting{"app": {Reason: "ErrImageNeverPull", Message: `Container image "busybox:1.36" is not present with pull policy of Never`}}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{`app: waiting ErrImageNeverPull: Container image "busybox:1.36" is not present with pull policy of Never restarts=0`}},
		},
		{
			name: "first init container running",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withInit("i1", "i2")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(running("i1", 0, 1))}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "False ContainersNotInitialized: containers with incomplete status: [i1 i2]", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Init:       []string{"i1: running restarts=0", "i2: waiting PodInitializing restarts=0"},
				Containers: []string{"app: waiting PodInitializing restarts=0"}},
		},
		{
			name: "init containers done, app running",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withInit("i1", "i2")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(exited("i1", 0, 1, 2, 0)), initC(exited("i2", 0, 2, 3, 0)), running("app", 0, 4)}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "True", "True"),
				Init:       []string{"i1: terminated Completed 0 restarts=0 ready", "i2: terminated Completed 0 restarts=0 ready"},
				Containers: []string{"app: running restarts=0 ready"}},
		},
		{
			name: "init container failed with Never: Failed",
			in: Input{Pod: newPod(corev1.RestartPolicyNever, withInit("i1")), Sandbox: sandbox, SandboxStopped: true,
				Containers: []runtime.ContainerStatus{initC(exited("i1", 0, 1, 2, 1))}},
			want: summary{Phase: corev1.PodFailed,
				Conditions: conds("False", "False ContainersNotInitialized: containers with incomplete status: [i1]", "False PodFailed", "False PodFailed"),
				Init:       []string{"i1: terminated Error 1 restarts=0"},
				Containers: []string{"app: waiting PodInitializing restarts=0"}},
		},
		{
			name: "init container failed with Always: Pending, crash loop",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, withInit("i1")), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{initC(exited("i1", 1, 3, 4, 1)), initC(exited("i1", 0, 1, 2, 1))},
				Waiting:    map[string]Waiting{"i1": {Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container=i1 pod=web_default(uid-1)"}}},
			want: summary{Phase: corev1.PodPending,
				Conditions: conds("True", "False ContainersNotInitialized: containers with incomplete status: [i1]", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Init:       []string{"i1: waiting CrashLoopBackOff: back-off 10s restarting failed container=i1 pod=web_default(uid-1) (last terminated Error 1) restarts=1"},
				Containers: []string{"app: waiting PodInitializing restarts=0"}},
		},
		{
			name: "terminating: killed containers are not shown waiting",
			in: Input{Pod: newPod(corev1.RestartPolicyAlways, deleting), Sandbox: sandbox,
				Containers: []runtime.ContainerStatus{exited("app", 0, 1, 100, 143)},
				Waiting:    map[string]Waiting{"app": {Reason: "CrashLoopBackOff", Message: backoffMsg}}},
			want: summary{Phase: corev1.PodRunning,
				Conditions: conds("True", "True", "False ContainersNotReady: containers with unready status: [app]", "False ContainersNotReady: containers with unready status: [app]"),
				Containers: []string{"app: terminated Error 143 restarts=0"}},
		},
		{
			name: "terminal phase is kept",
			in: Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox,
				Previous: &corev1.PodStatus{Phase: corev1.PodSucceeded}},
			want: summary{Phase: corev1.PodSucceeded,
				Conditions: conds("True", "True PodCompleted", "False PodCompleted", "False PodCompleted"),
				Containers: []string{"app: waiting ContainerCreating restarts=0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Now = at(200)
			got := summarize(Compute(tt.in))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
