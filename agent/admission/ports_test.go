package admission

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// hostPortPod has one container publishing ports.
func hostPortPod(name string, ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
	}
}

// withInit adds an init container publishing ports, a restartable
// (sidecar) one when sidecar is set.
func withInit(p *corev1.Pod, sidecar bool, ports ...corev1.ContainerPort) *corev1.Pod {
	c := corev1.Container{Name: "init", Ports: ports}
	if sidecar {
		always := corev1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
	}
	p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	return p
}

func hp(ip string, protocol corev1.Protocol, port int32) corev1.ContainerPort {
	return corev1.ContainerPort{ContainerPort: 80, HostIP: ip, Protocol: protocol, HostPort: port}
}

// Cases follow the scheduler's HostPortInfo.CheckConflict
// (pkg/scheduler/framework/types.go), GetHostPorts (pkg/scheduler/util)
// and kubelet's NodePorts refusal (pkg/kubelet/lifecycle/predicate.go).
func TestAdmitHostPorts(t *testing.T) {
	refused := Decision{Reason: "NodePorts", Message: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"}
	admit := Decision{Admit: true}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		admitted []*corev1.Pod
		want     Decision
	}{
		{name: "same port, protocol and no hostIP", pod: hostPortPod("a", hp("", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))}, want: refused},
		{name: "empty protocol is TCP", pod: hostPortPod("a", hp("", "", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))}, want: refused},
		{name: "other protocol", pod: hostPortPod("a", hp("", "UDP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))}, want: admit},
		{name: "other port", pod: hostPortPod("a", hp("", "TCP", 8081)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))}, want: admit},
		{name: "no hostIP against a specific address", pod: hostPortPod("a", hp("", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("10.0.0.1", "TCP", 8080))}, want: refused},
		{name: "0.0.0.0 against a specific address", pod: hostPortPod("a", hp("0.0.0.0", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("10.0.0.1", "TCP", 8080))}, want: refused},
		{name: "specific address against no hostIP", pod: hostPortPod("a", hp("10.0.0.1", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))}, want: refused},
		{name: "same specific address", pod: hostPortPod("a", hp("10.0.0.1", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("10.0.0.1", "TCP", 8080))}, want: refused},
		{name: "two specific addresses", pod: hostPortPod("a", hp("10.0.0.2", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("10.0.0.1", "TCP", 8080))}, want: admit},
		{name: "no hostPort never conflicts", pod: hostPortPod("a", hp("", "TCP", 0)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 0))}, want: admit},
		{name: "second port of several", pod: hostPortPod("a", hp("", "TCP", 80), hp("", "UDP", 53)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 81)), hostPortPod("c", hp("", "UDP", 53))}, want: refused},
		{name: "sidecar init container's port is taken", pod: hostPortPod("a", hp("", "TCP", 8080)), admitted: []*corev1.Pod{withInit(hostPortPod("b"), true, hp("", "TCP", 8080))}, want: refused},
		{name: "sidecar init container's port is wanted", pod: withInit(hostPortPod("a"), true, hp("", "TCP", 8080)), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))}, want: refused},
		{name: "plain init container's port does not count", pod: withInit(hostPortPod("a"), false, hp("", "TCP", 8080)), admitted: []*corev1.Pod{withInit(hostPortPod("b"), false, hp("", "TCP", 8080))}, want: admit},
		{name: "resources are reported before ports", pod: withRequests(hostPortPod("a", hp("", "TCP", 8080)), "3"), admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 8080))},
			want: Decision{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 1900"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Admit(tt.pod, tt.admitted, nodeWith(list("1900m", "768Mi", "110")))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Admit (-want +got):\n%s", diff)
			}
		})
	}
}

func withRequests(p *corev1.Pod, cpu string) *corev1.Pod {
	p.Spec.Containers[0].Resources = pod("", cpu, "").Spec.Containers[0].Resources
	return p
}
