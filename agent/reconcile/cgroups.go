package reconcile

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/resources"
	"github.com/podboot/podboot/agent/runtime"
)

// PodCgroups keeps each pod's cgroup (kubelet's pod container manager):
// made with the pod's totals before its sandbox, removed with it.
type PodCgroups interface {
	// EnsurePod creates or updates the pod's cgroup and returns its
	// cgroupfs path, the parent of the containers' cgroups.
	EnsurePod(pod *corev1.Pod) (string, error)
	// RemovePod kills what is left in the pod's cgroup and removes it; a
	// missing cgroup is not an error.
	RemovePod(uid types.UID) error
}

// containerResources is kubelet's generateLinuxContainerResources for one
// container: its cgroup values and the OOM score of its QoS class.
func containerResources(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) *runtime.ContainerResources {
	v := resources.ContainerCgroup(c)
	return &runtime.ContainerResources{
		CPUShares:   v.CPUShares,
		CPUQuota:    v.CPUQuota,
		CPUPeriod:   v.CPUPeriod,
		MemoryLimit: v.MemoryMax,
		OOMScoreAdj: resources.OOMScoreAdj(pod, c, memoryCapacity),
	}
}
