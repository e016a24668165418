package volumes

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/resources"
)

// tmpfsSize is kubelet's calculateEmptyDirMemorySize (empty_dir.go): the
// node's allocatable memory, lowered to the pod's memory limit (its cgroup's
// memory.max, ResourceConfigForPod) and then to the volume's sizeLimit, each
// only when above 0 and not above the size so far. 0 leaves the kernel's
// default (half of RAM), as generateTmpfsMountOptions does.
func tmpfsSize(pod *corev1.Pod, src *corev1.EmptyDirVolumeSource, nodeAllocatableMemory int64) int64 {
	size := nodeAllocatableMemory
	fits := func(v int64) bool { return v > 0 && (size <= 0 || v <= size) }
	if limit := resources.PodCgroup(pod).MemoryMax; fits(limit) {
		size = limit
	}
	if src.SizeLimit != nil {
		if limit := src.SizeLimit.Value(); fits(limit) {
			size = limit
		}
	}
	return max(size, 0)
}
