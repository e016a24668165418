package admission

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/internal/device"
)

var quantityEqual = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

func list(cpu, memory, pods string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceCPU: cpu, corev1.ResourceMemory: memory, corev1.ResourcePods: pods} {
		if v != "" {
			l[name] = resource.MustParse(v)
		}
	}
	return l
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		name    string
		proc    string
		want    corev1.ResourceList
		wantErr string
	}{
		{name: "Pi 4 with 1 GB", proc: "testdata/pi4/proc", want: list("4", "967032832", "110")},
		{name: "offline cpu is not counted", proc: "testdata/offline/proc", want: list("3", "967032832", "110")},
		{name: "no meminfo", proc: "testdata/nomeminfo/proc", wantErr: "read node capacity: memory"},
		{name: "no stat", proc: "testdata/nostat/proc", wantErr: "read node capacity: cpus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := procfs.NewFS(tt.proc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Capacity(fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, quantityEqual); diff != "" {
				t.Errorf("Capacity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllocatable(t *testing.T) {
	tests := []struct {
		name     string
		capacity corev1.ResourceList
		reserved []corev1.ResourceList
		want     corev1.ResourceList
	}{
		{
			name:     "defaults on a 1 GB Pi 4",
			capacity: list("4", "944368Ki", "110"),
			reserved: []corev1.ResourceList{list("100m", "128Mi", "")},
			want:     list("3900m", "813296Ki", "110"),
		},
		{
			name:     "system reserved and hard eviction both subtracted",
			capacity: list("4", "1Gi", "110"),
			reserved: []corev1.ResourceList{list("100m", "128Mi", ""), list("", "64Mi", "")},
			want:     list("3900m", "832Mi", "110"),
		},
		{
			name:     "never negative",
			capacity: list("1", "256Mi", "110"),
			reserved: []corev1.ResourceList{list("2", "512Mi", "")},
			want:     list("0", "0", "110"),
		},
		{
			name:     "reserved resource the node lacks is ignored",
			capacity: list("2", "1Gi", "110"),
			reserved: []corev1.ResourceList{{corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}},
			want:     list("2", "1Gi", "110"),
		},
		{
			name:     "nothing reserved",
			capacity: list("2", "1Gi", "110"),
			want:     list("2", "1Gi", "110"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Allocatable(tt.capacity, tt.reserved...)
			if diff := cmp.Diff(tt.want, got, quantityEqual); diff != "" {
				t.Errorf("Allocatable (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHardEvictionReservation(t *testing.T) {
	q := resource.MustParse("64Mi")
	capacity := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("10Gi")}
	tests := []struct {
		name       string
		thresholds []device.Threshold
		want       corev1.ResourceList
	}{
		{name: "none", want: corev1.ResourceList{}},
		{
			name: "defaults",
			thresholds: []device.Threshold{
				{Signal: device.SignalMemoryAvailable, Value: device.ThresholdValue{Quantity: &q}},
				{Signal: device.SignalNodeFsAvailable, Value: device.ThresholdValue{Percentage: 0.5}},
			},
			want: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceEphemeralStorage: resource.MustParse("5Gi")},
		},
		{
			name:       "memory percentage",
			thresholds: []device.Threshold{{Signal: device.SignalMemoryAvailable, Value: device.ThresholdValue{Percentage: 0.25}}},
			want:       corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HardEvictionReservation(tt.thresholds, capacity)
			if diff := cmp.Diff(tt.want, got, quantityEqual); diff != "" {
				t.Errorf("HardEvictionReservation (-want +got):\n%s", diff)
			}
		})
	}
}
