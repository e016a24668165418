package eviction

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/internal/device"
)

const mi = 1 << 20

func quantity(s string) *resource.Quantity { q := resource.MustParse(s); return &q }

// defaults are device.yaml's default evictionHard.
var defaults = []device.Threshold{
	{Signal: device.SignalMemoryAvailable, Value: device.ThresholdValue{Quantity: quantity("64Mi")}},
	{Signal: device.SignalNodeFsAvailable, Value: device.ThresholdValue{Percentage: 0.1}},
}

func TestPressure(t *testing.T) {
	healthy := Signals{MemoryAvailable: 300 * mi, MemoryCapacity: 1024 * mi, NodefsAvailable: 4 << 30, NodefsCapacity: 8 << 30}
	tests := []struct {
		name       string
		thresholds []device.Threshold
		signals    Signals
		want       []corev1.NodeConditionType
	}{
		{name: "healthy", thresholds: defaults, signals: healthy},
		{name: "memory below 64Mi", thresholds: defaults, signals: Signals{MemoryAvailable: 50 * mi, MemoryCapacity: 1024 * mi, NodefsAvailable: 4 << 30, NodefsCapacity: 8 << 30}, want: []corev1.NodeConditionType{corev1.NodeMemoryPressure}},
		{name: "memory exactly at threshold is no pressure", thresholds: defaults, signals: Signals{MemoryAvailable: 64 * mi, MemoryCapacity: 1024 * mi, NodefsAvailable: 4 << 30, NodefsCapacity: 8 << 30}},
		{name: "disk below 10%", thresholds: defaults, signals: Signals{MemoryAvailable: 300 * mi, MemoryCapacity: 1024 * mi, NodefsAvailable: 700 * mi, NodefsCapacity: 8 << 30}, want: []corev1.NodeConditionType{corev1.NodeDiskPressure}},
		{name: "both", thresholds: defaults, signals: Signals{MemoryAvailable: 1, MemoryCapacity: 1024 * mi, NodefsAvailable: 1, NodefsCapacity: 8 << 30}, want: []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure}},
		{name: "memory percentage", thresholds: []device.Threshold{{Signal: device.SignalMemoryAvailable, Value: device.ThresholdValue{Percentage: 0.5}}}, signals: healthy, want: []corev1.NodeConditionType{corev1.NodeMemoryPressure}},
		{name: "no thresholds", signals: Signals{}},
		{name: "unknown signal ignored", thresholds: []device.Threshold{{Signal: "pid.available", Value: device.ThresholdValue{Quantity: quantity("100")}}}, signals: Signals{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Pressure(tt.thresholds, tt.signals)); diff != "" {
				t.Errorf("Pressure (-want +got):\n%s", diff)
			}
		})
	}
}

func pod(name, memRequest string, prio int32) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Priority: &prio, Containers: []corev1.Container{{Name: "c"}}}}
	if memRequest != "" {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memRequest)}
	}
	return p
}

// Cases after kubelet's rankMemoryPressure (pkg/kubelet/eviction/helpers.go):
// orderedBy(exceedMemoryRequests, priority, memory).
func TestRank(t *testing.T) {
	tests := []struct {
		name  string
		usage []Usage
		want  []string
	}{
		{
			name: "over request before under request, whatever the priority",
			usage: []Usage{
				{Pod: pod("under-low-prio", "200Mi", -10), MemoryWorkingSet: 100 * mi},
				{Pod: pod("over-high-prio", "100Mi", 1000), MemoryWorkingSet: 101 * mi},
			},
			want: []string{"over-high-prio", "under-low-prio"},
		},
		{
			name: "then lower priority first",
			usage: []Usage{
				{Pod: pod("high", "", 100), MemoryWorkingSet: 500 * mi},
				{Pod: pod("low", "", 0), MemoryWorkingSet: 10 * mi},
			},
			want: []string{"low", "high"},
		},
		{
			name: "then larger use above request first",
			usage: []Usage{
				{Pod: pod("small-over", "100Mi", 0), MemoryWorkingSet: 110 * mi},
				{Pod: pod("besteffort", "", 0), MemoryWorkingSet: 50 * mi},
				{Pod: pod("big-over", "10Mi", 0), MemoryWorkingSet: 200 * mi},
			},
			want: []string{"big-over", "besteffort", "small-over"},
		},
		{
			name: "best effort naturally first among equals",
			usage: []Usage{
				{Pod: pod("guaranteed", "256Mi", 0), MemoryWorkingSet: 200 * mi},
				{Pod: pod("burstable", "128Mi", 0), MemoryWorkingSet: 100 * mi},
				{Pod: pod("besteffort", "", 0), MemoryWorkingSet: 5 * mi},
			},
			want: []string{"besteffort", "burstable", "guaranteed"},
		},
		{
			name: "under requests: least headroom first",
			usage: []Usage{
				{Pod: pod("lots-of-headroom", "500Mi", 0), MemoryWorkingSet: 100 * mi},
				{Pod: pod("near-request", "128Mi", 0), MemoryWorkingSet: 120 * mi},
			},
			want: []string{"near-request", "lots-of-headroom"},
		},
		{
			name: "equal pods keep their order",
			usage: []Usage{
				{Pod: pod("b", "", 0), MemoryWorkingSet: mi},
				{Pod: pod("a", "", 0), MemoryWorkingSet: mi},
			},
			want: []string{"b", "a"},
		},
		{name: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Rank(tt.usage)
			var got []string
			for _, u := range tt.usage {
				got = append(got, u.Pod.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Rank (-want +got):\n%s", diff)
			}
		})
	}
}

// Texts are kubelet's evictionMessage (pkg/kubelet/eviction/helpers.go),
// trailing space included.
func TestMessage(t *testing.T) {
	low := Signals{MemoryAvailable: 50 * mi, MemoryCapacity: 1024 * mi, NodefsAvailable: 700 * mi, NodefsCapacity: 8 << 30}
	twoContainers := pod("web", "", 0)
	twoContainers.Spec.Containers = []corev1.Container{
		{Name: "x"},
		{Name: "y", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}},
		{Name: "z", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}},
	}
	twoContainers.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	tests := []struct {
		name       string
		resource   corev1.ResourceName
		thresholds []device.Threshold
		usage      Usage
		want       string
	}{
		{
			name: "memory, containers over request", resource: corev1.ResourceMemory, thresholds: defaults,
			usage: Usage{Pod: twoContainers, ContainerMemoryWorkingSet: map[string]int64{"x": 30 * mi, "y": 100 * mi, "z": 10 * mi, "init": 1 * mi}},
			want:  "The node was low on resource: memory. Threshold quantity: 64Mi, available: 50Mi. Container x was using 30Mi, request is 0, has larger consumption of memory. Container y was using 100Mi, request is 64Mi, has larger consumption of memory. Container init was using 1Mi, request is 0, has larger consumption of memory. ",
		},
		{
			name: "memory, no container stats", resource: corev1.ResourceMemory, thresholds: defaults, usage: Usage{Pod: twoContainers},
			want: "The node was low on resource: memory. Threshold quantity: 64Mi, available: 50Mi. ",
		},
		{
			name: "disk, percentage threshold", resource: corev1.ResourceEphemeralStorage, thresholds: defaults, usage: Usage{Pod: twoContainers},
			want: "The node was low on resource: ephemeral-storage. Threshold quantity: 858993472, available: 700Mi. ",
		},
		{
			name: "no threshold for the resource", resource: corev1.ResourceMemory, usage: Usage{Pod: twoContainers},
			want: "The node was low on resource: memory. ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Message(tt.resource, tt.thresholds, low, tt.usage)); diff != "" {
				t.Errorf("Message (-want +got):\n%s", diff)
			}
		})
	}
	if Reason != "Evicted" {
		t.Errorf("Reason = %q, want kubelet's Evicted", Reason)
	}
}

func TestMet(t *testing.T) {
	got := Met(defaults, Signals{MemoryAvailable: 1, MemoryCapacity: 1024 * mi, NodefsAvailable: 8 << 30, NodefsCapacity: 8 << 30})
	if len(got) != 1 || got[0].Signal != device.SignalMemoryAvailable {
		t.Errorf("Met = %+v, want memory.available only", got)
	}
}
