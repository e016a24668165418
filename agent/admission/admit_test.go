package admission

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pod has one container requesting cpu and memory ("" for none).
func pod(name, cpu, memory string) *corev1.Pod {
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		req[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Resources: corev1.ResourceRequirements{Requests: req},
		}}},
	}
}

// nodeWith is a node with allocatable and nothing else.
func nodeWith(allocatable corev1.ResourceList) *corev1.Node {
	return &corev1.Node{Status: corev1.NodeStatus{Allocatable: allocatable}}
}

func pods(n int, cpu, memory string) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		out = append(out, pod(fmt.Sprintf("p%d", i), cpu, memory))
	}
	return out
}

// Cases follow pkg/kubelet/lifecycle/predicate.go and the scheduler's
// noderesources fitsRequest: reasons "OutOf"+resource, message
// InsufficientResourceError's, cpu in millicores and memory in bytes.
func TestAdmit(t *testing.T) {
	alloc := list("1900m", "768Mi", "110")
	tests := []struct {
		name        string
		pod         *corev1.Pod
		admitted    []*corev1.Pod
		allocatable corev1.ResourceList
		want        Decision
	}{
		{name: "fits on an empty node", pod: pod("a", "1", "256Mi"), allocatable: alloc, want: Decision{Admit: true}},
		{name: "fits exactly", pod: pod("a", "1400m", "512Mi"), admitted: []*corev1.Pod{pod("b", "500m", "256Mi")}, allocatable: alloc, want: Decision{Admit: true}},
		{
			name: "out of cpu", pod: pod("a", "2", "64Mi"), admitted: []*corev1.Pod{pod("b", "500m", "")}, allocatable: alloc,
			want: Decision{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1900"},
		},
		{
			name: "out of memory", pod: pod("a", "100m", "512Mi"), admitted: []*corev1.Pod{pod("b", "", "300Mi")}, allocatable: alloc,
			want: Decision{Reason: "OutOfmemory", Message: "Node didn't have enough resource: memory, requested: 536870912, used: 314572800, capacity: 805306368"},
		},
		{
			name: "cpu is reported before memory", pod: pod("a", "3", "1Gi"), allocatable: alloc,
			want: Decision{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 1900"},
		},
		{
			name: "out of pods, even for a best-effort pod", pod: pod("a", "", ""), admitted: pods(3, "", ""), allocatable: list("1900m", "768Mi", "3"),
			want: Decision{Reason: "OutOfpods", Message: "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3"},
		},
		{
			name: "pods are reported before cpu", pod: pod("a", "3", ""), admitted: pods(1, "", ""), allocatable: list("1900m", "768Mi", "1"),
			want: Decision{Reason: "OutOfpods", Message: "Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1"},
		},
		{name: "best-effort pod is admitted on a full node", pod: pod("a", "", ""), admitted: pods(2, "950m", "384Mi"), allocatable: alloc, want: Decision{Admit: true}},
		{
			name: "used sums every admitted pod", pod: pod("a", "", "1Mi"), admitted: pods(3, "", "256Mi"), allocatable: alloc,
			want: Decision{Reason: "OutOfmemory", Message: "Node didn't have enough resource: memory, requested: 1048576, used: 805306368, capacity: 805306368"},
		},
		{
			name: "zero allocatable refuses any request", pod: pod("a", "1m", ""), allocatable: list("0", "0", "110"),
			want: Decision{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu, requested: 1, used: 0, capacity: 0"},
		},
		{
			name:        "ephemeral-storage is checked when the node reports it",
			pod:         &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("2Gi")}}}}}},
			allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
			want:        Decision{Reason: "OutOfephemeral-storage", Message: "Node didn't have enough resource: ephemeral-storage, requested: 2147483648, used: 0, capacity: 1073741824"},
		},
		{
			name:        "ephemeral-storage is not checked when the node does not report it",
			pod:         &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("2Gi")}}}}}},
			allocatable: alloc,
			want:        Decision{Admit: true},
		},
		{
			name: "init containers count as their max, not their sum",
			pod: func() *corev1.Pod {
				p := pod("a", "500m", "")
				p.Spec.InitContainers = []corev1.Container{
					{Name: "i1", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1900m")}}},
					{Name: "i2", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1900m")}}},
				}
				return p
			}(),
			allocatable: alloc, want: Decision{Admit: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Admit(tt.pod, tt.admitted, nodeWith(tt.allocatable))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Admit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ns, name string, d time.Duration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(t0.Add(d))}}
	}
	tests := []struct {
		name string
		pods []*corev1.Pod
		want []string
	}{
		{name: "oldest first", pods: []*corev1.Pod{at("default", "new", 2*time.Second), at("default", "old", 0), at("default", "mid", time.Second)}, want: []string{"default/old", "default/mid", "default/new"}},
		{name: "same age by namespace then name", pods: []*corev1.Pod{at("kube-system", "a", 0), at("default", "b", 0), at("default", "a", 0)}, want: []string{"default/a", "default/b", "kube-system/a"}},
		{name: "no timestamp counts as oldest", pods: []*corev1.Pod{at("default", "a", time.Second), {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "z"}}}, want: []string{"default/z", "default/a"}},
		{name: "empty", pods: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Order(tt.pods)
			var got []string
			for _, p := range tt.pods {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Order (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAdmitInOrder admits a flash's pods one by one as the agent does at
// boot: the same flash always admits the same pods.
func TestAdmitInOrder(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	flash := []*corev1.Pod{pod("web", "1", "256Mi"), pod("db", "1", "512Mi"), pod("cache", "500m", "128Mi"), pod("log", "", "")}
	for _, p := range flash {
		p.CreationTimestamp = t0
	}
	Order(flash)
	var admitted []*corev1.Pod
	got := map[string]string{}
	for _, p := range flash {
		d := Admit(p, admitted, nodeWith(list("1900m", "768Mi", "110")))
		if d.Admit {
			admitted = append(admitted, p)
			got[p.Name] = "admitted"
			continue
		}
		got[p.Name] = d.Reason
	}
	want := map[string]string{"cache": "admitted", "db": "admitted", "log": "admitted", "web": "OutOfcpu"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admission (-want +got):\n%s", diff)
	}
}
