package reconcile

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/runtime/fake"
)

// sizedPod is a one-container pod named name requesting memory.
func sizedPod(uid types.UID, name, memory string) *corev1.Pod {
	p := newTestPod(uid, corev1.RestartPolicyAlways, "app")
	p.Name = name
	q := resource.MustParse(memory)
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: q},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: q},
	}
	return p
}

// TestAdmission: pods are admitted in kubelet's order against the node's
// allocatable; one that does not fit is Failed with OutOfmemory, a
// Warning event and no container, while the others run; once a running
// pod is gone, a new one that fits in its place is admitted.
func TestAdmission(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		allocatable := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("1Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
		e.m.cfg.Admit = func(pod *corev1.Pod, active []*corev1.Pod) admission.Decision {
			return admission.Admit(pod, active, &corev1.Node{Status: corev1.NodeStatus{Allocatable: allocatable}})
		}
		// Same age: admitted by namespace/name, so "a-big" then "b-big" and
		// "c-small" — whatever order the files were read in.
		small := sizedPod("u3", "c-small", "256Mi")
		first := sizedPod("u1", "a-big", "600Mi")
		second := sizedPod("u2", "b-big", "600Mi")
		e.m.SetDesired([]*corev1.Pod{small, second, first})
		e.run()
		defer e.stop()

		if s := e.status("u1"); s.Phase != corev1.PodRunning {
			t.Errorf("a-big: phase %s, want Running", s.Phase)
		}
		if s := e.status("u3"); s.Phase != corev1.PodRunning {
			t.Errorf("c-small: phase %s, want Running (it fits beside a-big)", s.Phase)
		}
		s := e.status("u2")
		if s.Phase != corev1.PodFailed || s.Reason != "OutOfmemory" || !strings.HasPrefix(s.Message, "Pod was rejected: Node didn't have enough resource: memory") {
			t.Errorf("b-big: phase %s reason %q message %q; want Failed, OutOfmemory, kubelet's message", s.Phase, s.Reason, s.Message)
		}
		if s.QOSClass != corev1.PodQOSBurstable || len(s.ContainerStatuses) != 0 {
			t.Errorf("b-big: qosClass %s, %d container statuses; want Burstable (memory only) and none", s.QOSClass, len(s.ContainerStatuses))
		}
		if _, running := rt.Running("u2", "app"); running {
			t.Error("the refused pod's container runs")
		}
		var warnings []string
		for _, ev := range e.rec.take() {
			if strings.Contains(ev, " Warning ") {
				warnings = append(warnings, ev)
			}
		}
		if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "u2 Warning OutOfmemory : Node didn't have enough resource: memory") {
			t.Errorf("warning events %q, want one OutOfmemory for b-big", warnings)
		}

		// a-big's manifest goes; a new pod that fits in its place runs.
		third := sizedPod("u4", "d-big", "600Mi")
		e.m.SetDesired([]*corev1.Pod{small, second, third})
		advance(2 * time.Minute)
		if s := e.status("u4"); s.Phase != corev1.PodRunning {
			t.Errorf("d-big after a-big left: phase %s %s %q, want Running", s.Phase, s.Reason, s.Message)
		}
		if s := e.status("u2"); s.Phase != corev1.PodFailed {
			t.Errorf("b-big stays rejected (kubelet does not retry admission): phase %s", s.Phase)
		}
	})
}

// TestAdmissionHostPort: a second pod asking for a hostPort an admitted
// pod holds is Failed with kubelet's NodePorts refusal while the first
// keeps running; once the first is gone, a new pod with that port runs.
func TestAdmissionHostPort(t *testing.T) {
	withPort := func(uid types.UID, name string, hostIP string) *corev1.Pod {
		p := newTestPod(uid, corev1.RestartPolicyAlways, "app")
		p.Name = name
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, HostIP: hostIP, Protocol: corev1.ProtocolTCP}}
		return p
	}
	tests := []struct {
		name          string
		first, second *corev1.Pod
	}{
		{name: "same port on every address", first: withPort("u1", "a-web", ""), second: withPort("u2", "b-web", "")},
		{name: "every address against one", first: withPort("u1", "a-web", "10.0.0.1"), second: withPort("u2", "b-web", "0.0.0.0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				e := newEnv(t, rt, "")
				allocatable := corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("4"),
					corev1.ResourceMemory: resource.MustParse("1Gi"),
					corev1.ResourcePods:   resource.MustParse("110"),
				}
				e.m.cfg.Admit = func(pod *corev1.Pod, active []*corev1.Pod) admission.Decision {
					return admission.Admit(pod, active, &corev1.Node{Status: corev1.NodeStatus{Allocatable: allocatable}})
				}
				e.m.SetDesired([]*corev1.Pod{tt.second, tt.first})
				e.run()
				defer e.stop()

				if s := e.status("u1"); s.Phase != corev1.PodRunning {
					t.Errorf("first: phase %s %s %q, want Running", s.Phase, s.Reason, s.Message)
				}
				want := "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
				if s := e.status("u2"); s.Phase != corev1.PodFailed || s.Reason != "NodePorts" || s.Message != want {
					t.Errorf("second: phase %s reason %q message %q; want Failed, NodePorts, %q", s.Phase, s.Reason, s.Message, want)
				}
				if _, running := rt.Running("u2", "app"); running {
					t.Error("the refused pod's container runs")
				}

				third := withPort("u3", "c-web", "")
				e.m.SetDesired([]*corev1.Pod{tt.second, third})
				advance(2 * time.Minute)
				if s := e.status("u3"); s.Phase != corev1.PodRunning {
					t.Errorf("third after the first left: phase %s %s %q, want Running", s.Phase, s.Reason, s.Message)
				}
				if _, running := rt.Running("u1", "app"); running {
					t.Error("the first pod's container still runs")
				}
			})
		})
	}
}
