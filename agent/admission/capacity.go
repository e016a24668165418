package admission

import (
	"fmt"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/internal/device"
)

// DefaultMaxPods is kubelet's default maxPods.
const DefaultMaxPods = 110

// Capacity reads the machine: the online CPUs (the cpuN lines of
// /proc/stat, which lists online CPUs only, as cAdvisor's NumCores counts
// them), MemTotal from /proc/meminfo, and kubelet's 110 pods.
func Capacity(fs procfs.FS) (corev1.ResourceList, error) {
	stat, err := fs.Stat()
	if err != nil {
		return nil, fmt.Errorf("read node capacity: cpus: %w", err)
	}
	if len(stat.CPU) == 0 {
		return nil, fmt.Errorf("read node capacity: cpus: no cpuN line in /proc/stat")
	}
	mem, err := fs.Meminfo()
	if err != nil {
		return nil, fmt.Errorf("read node capacity: memory: %w", err)
	}
	if mem.MemTotalBytes == nil {
		return nil, fmt.Errorf("read node capacity: memory: no MemTotal in /proc/meminfo")
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(len(stat.CPU)), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(*mem.MemTotalBytes), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(DefaultMaxPods, resource.DecimalSI),
	}, nil
}

// Allocatable is capacity less every reserved list, each resource floored
// at zero: kubelet's getNodeAllocatable
// (pkg/kubelet/cm/node_container_manager_linux.go). Kubelet reserves
// kubeReserved, systemReserved and the hard eviction thresholds; podboot has
// no separate kubelet, so pass systemReserved and HardEvictionReservation.
func Allocatable(capacity corev1.ResourceList, reserved ...corev1.ResourceList) corev1.ResourceList {
	out := make(corev1.ResourceList, len(capacity))
	for name, c := range capacity {
		v := c.DeepCopy()
		for _, r := range reserved {
			if q, ok := r[name]; ok {
				v.Sub(q)
			}
		}
		if v.Sign() < 0 {
			v.Set(0)
		}
		out[name] = v
	}
	return out
}

// HardEvictionReservation is what the hard eviction thresholds keep back
// from allocatable: memory.available from memory, nodefs.available from
// ephemeral-storage, percentages taken of capacity, as kubelet's
// hardEvictionReservation (pkg/kubelet/cm/node_container_manager_linux.go).
func HardEvictionReservation(thresholds []device.Threshold, capacity corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, t := range thresholds {
		switch t.Signal {
		case device.SignalMemoryAvailable:
			out[corev1.ResourceMemory] = t.Value.Of(capacity[corev1.ResourceMemory])
		case device.SignalNodeFsAvailable:
			out[corev1.ResourceEphemeralStorage] = t.Value.Of(capacity[corev1.ResourceEphemeralStorage])
		}
	}
	return out
}
