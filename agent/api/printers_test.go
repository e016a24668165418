package api

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func status(running, waiting, terminated bool, reason string, exit, signal int32) corev1.ContainerState {
	switch {
	case running:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	case waiting:
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	case terminated:
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exit, Signal: signal}}
	}
	return corev1.ContainerState{}
}

var (
	stRunning = status(true, false, false, "", 0, 0)
	always    = corev1.ContainerRestartPolicyAlways
)

func TestPodRow(t *testing.T) {
	base := func(mut func(p *corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: ago(90 * time.Second)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		}
		mut(p)
		return p
	}
	cs := func(name string, ready bool, restarts int32, st corev1.ContainerState) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts, State: st}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want []any // NAME READY STATUS RESTARTS AGE IP NODE NOMINATED GATES
	}{
		{"running ready", base(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", true, 0, stRunning)}
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}}
			p.Spec.NodeName = "n"
		}), []any{"p", "1/1", "Running", "0", "90s", "10.0.0.1", "n", "<none>", "<none>"}},
		{"pending no status", base(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
			[]any{"p", "0/1", "Pending", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"status.reason wins over phase", base(func(p *corev1.Pod) { p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted" }),
			[]any{"p", "0/1", "Evicted", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"scheduling gated", base(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Reason: corev1.PodReasonSchedulingGated}}
		}), []any{"p", "0/1", "SchedulingGated", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"waiting reason", base(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, true, false, "ImagePullBackOff", 0, 0))}
		}), []any{"p", "0/1", "ImagePullBackOff", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"crashloop with restart age", base(func(p *corev1.Pod) {
			c := cs("a", false, 5, status(false, true, false, "CrashLoopBackOff", 0, 0))
			c.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(3 * time.Minute)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{c}
		}), []any{"p", "0/1", "CrashLoopBackOff", "5 (3m ago)", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"terminated reason", base(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, false, true, "OOMKilled", 137, 0))}
		}), []any{"p", "0/1", "OOMKilled", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"terminated by signal", base(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, false, true, "", 0, 9))}
		}), []any{"p", "0/1", "Signal:9", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"terminated exit code", base(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, false, true, "", 2, 0))}
		}), []any{"p", "0/1", "ExitCode:2", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"completed", base(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodSucceeded
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, false, true, "Completed", 0, 0))}
		}), []any{"p", "0/1", "Completed", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"completed but one still running and ready", base(func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{{Name: "a"}, {Name: "b"}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", true, 0, stRunning), cs("b", false, 0, status(false, false, true, "Completed", 0, 0))}
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}), []any{"p", "1/2", "Running", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"completed but one still running, pod not ready", base(func(p *corev1.Pod) {
			p.Spec.Containers = []corev1.Container{{Name: "a"}, {Name: "b"}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", true, 0, stRunning), cs("b", false, 0, status(false, false, true, "Completed", 0, 0))}
		}), []any{"p", "1/2", "NotReady", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"init running", base(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}, {Name: "i2"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{
				cs("i1", false, 0, status(false, false, true, "Completed", 0, 0)), cs("i2", false, 0, stRunning),
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, true, false, "PodInitializing", 0, 0))}
		}), []any{"p", "0/1", "Init:1/2", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"init crashloop counts init restarts", base(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{cs("i1", false, 2, status(false, true, false, "CrashLoopBackOff", 0, 0))}
		}), []any{"p", "0/1", "Init:CrashLoopBackOff", "2", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"init error", base(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{cs("i1", false, 0, status(false, false, true, "Error", 1, 0))}
		}), []any{"p", "0/1", "Init:Error", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"init signal", base(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{cs("i1", false, 0, status(false, false, true, "", 1, 15))}
		}), []any{"p", "0/1", "Init:Signal:15", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"init exit code", base(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{cs("i1", false, 0, status(false, false, true, "", 3, 0))}
		}), []any{"p", "0/1", "Init:ExitCode:3", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"init waiting PodInitializing counts as position", base(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{cs("i1", false, 0, status(false, true, false, "PodInitializing", 0, 0))}
		}), []any{"p", "0/1", "Init:0/1", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"sidecar started and ready counts", base(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "side", RestartPolicy: &always}}
			sc := cs("side", true, 1, stRunning)
			sc.Started = ptr(true)
			sc.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{FinishedAt: ago(10 * time.Minute)}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{sc}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", true, 0, stRunning)}
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
		}), []any{"p", "2/2", "Running", "1 (10m ago)", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"terminating", base(func(p *corev1.Pod) {
			p.DeletionTimestamp = ptr(ago(time.Second))
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", true, 0, stRunning)}
		}), []any{"p", "1/1", "Terminating", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"terminating but already finished", base(func(p *corev1.Pod) {
			p.DeletionTimestamp = ptr(ago(time.Second))
			p.Status.Phase = corev1.PodSucceeded
			p.Status.ContainerStatuses = []corev1.ContainerStatus{cs("a", false, 0, status(false, false, true, "Completed", 0, 0))}
		}), []any{"p", "0/1", "Completed", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"node lost", base(func(p *corev1.Pod) {
			p.DeletionTimestamp = ptr(ago(time.Second))
			p.Status.Reason = "NodeLost"
		}), []any{"p", "0/1", "Unknown", "0", "90s", "<none>", "<none>", "<none>", "<none>"}},
		{"readiness gates", base(func(p *corev1.Pod) {
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "x"}, {ConditionType: "y"}}
			p.Status.Conditions = []corev1.PodCondition{{Type: "x", Status: corev1.ConditionTrue}, {Type: "y", Status: corev1.ConditionFalse}}
			p.Status.NominatedNodeName = "other"
		}), []any{"p", "0/1", "Running", "0", "90s", "<none>", "<none>", "other", "1/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, podRow(tt.pod, t0)); diff != "" {
				t.Errorf("podRow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOtherRows(t *testing.T) {
	node := fixtureNode()
	notReady := fixtureNode()
	notReady.Status.Conditions[0].Status = corev1.ConditionUnknown
	notReady.Spec.Unschedulable = true
	notReady.Labels = map[string]string{"kubernetes.io/role": "worker", "node-role.kubernetes.io/b": "", "node-role.kubernetes.io/a": ""}
	bare := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{a}"},
		Type:           "Warning", Reason: "BackOff", Message: " msg \n",
		FirstTimestamp: ago(time.Hour), LastTimestamp: ago(time.Minute), Count: 7,
		Source: corev1.EventSource{Component: "kubelet", Host: "board-1"},
	}
	newStyle := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "e2"},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node"},
		EventTime:           metav1.NewMicroTime(t0.Add(-2 * time.Second)),
		ReportingController: "podboot",
	}
	tests := []struct {
		name string
		row  func() []any
		want []any
	}{
		{"node ready", func() []any { return nodeRow(node, t0) },
			[]any{"board-1", "Ready", "edge", "26h", "v1.37.2", "10.0.2.15", "<none>", "podboot", "6.1.0-arm64", "containerd://2.4.2"}},
		{"node not ready, cordoned, roles", func() []any { return nodeRow(notReady, t0) },
			[]any{"board-1", "NotReady,SchedulingDisabled", "a,b,worker", "26h", "v1.37.2", "10.0.2.15", "<none>", "podboot", "6.1.0-arm64", "containerd://2.4.2"}},
		{"node bare", func() []any { return nodeRow(bare, t0) },
			[]any{"bare", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"}},
		{"event", func() []any { return eventRow(ev, t0) },
			[]any{"60s", "Warning", "BackOff", "pod/web", "spec.containers{a}", "kubelet, board-1", "msg", "60m", int64(7), "e1"}},
		{"event of the new API", func() []any { return eventRow(newStyle, t0) },
			[]any{"2s", "", "", "node", "", "podboot", "", "2s", int64(1), "e2"}},
		{"namespace", func() []any {
			return namespaceRow(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", CreationTimestamp: ago(3 * 24 * time.Hour)}, Status: corev1.NamespaceStatus{Phase: "Active"}}, t0)
		}, []any{"x", "Active", "3d"}},
		{"configmap", func() []any {
			return configMapRow(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"a": "1"}, BinaryData: map[string][]byte{"b": nil}}, t0)
		}, []any{"c", int64(2), "<unknown>"}},
		{"secret", func() []any {
			return secretRow(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": nil}}, t0)
		}, []any{"s", "Opaque", int64(1), "<unknown>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.row()); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
	for _, res := range resources() {
		if got := len(res.row(zeroObject(res.kind), t0)); got != len(res.columns) {
			t.Errorf("%s: %d cells for %d columns", res.name, got, len(res.columns))
		}
	}
}
