package resources

import corev1 "k8s.io/api/core/v1"

// OOM score adjustments from pkg/kubelet/qos/policy.go.
const (
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000

	// systemNodeCritical is scheduling.SystemNodeCritical, the priority class
	// whose static pods kubelet protects like Guaranteed ones.
	systemNodeCritical = "system-node-critical"
)

// OOMScoreAdj is kubelet's GetContainerOOMScoreAdjust
// (pkg/kubelet/qos/policy.go): the oom_score_adj of the container's
// processes, given the node's memory capacity in bytes.
//
// It follows the newest kubelet with its default feature gates:
// PodLevelResources on (pod-level memory requests not claimed by containers
// are shared out equally among all containers), sidecars (restartable init
// containers) never scored above the regular container with the smallest
// request (since 1.29), and KubeletOOMScoreAdjTieBreak and DRA memory claims
// off, as podboot has neither. Older kubelets scored sidecars like any other
// container and ignored pod-level requests.
func OOMScoreAdj(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) int {
	// kubelet: types.IsNodeCriticalPod = IsCriticalPod && priorityClassName
	// is system-node-critical. Every podboot pod comes from a file, so it is
	// a static pod and IsCriticalPod holds.
	if pod.Spec.PriorityClassName == systemNodeCritical {
		return guaranteedOOMScoreAdj
	}
	switch QOSClass(pod) {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case corev1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	if memoryCapacity <= 0 {
		// kubelet always knows the capacity and would divide by zero; score
		// as if the request were negligible rather than panic.
		return besteffortOOMScoreAdj - 1
	}

	// Burstable: a container requesting 10% of memory gets 900, so one that
	// uses more than it asked for reaches 1000 and is killed first.
	memReq := c.Resources.Requests.Memory().Value()
	var remainingPerContainer int64
	if podLevelRequestsSet(pod) {
		remainingPerContainer = remainingPodMemReqPerContainer(pod)
	}
	adj := 1000 - (1000*(memReq+remainingPerContainer))/memoryCapacity

	if isSidecarOf(pod, c) && len(pod.Spec.Containers) > 0 {
		minAdj := 1000 - (1000*(minRegularContainerMemory(pod)+remainingPerContainer))/memoryCapacity
		if adj > minAdj {
			adj = minAdj
		}
	}

	// Stay above any Guaranteed container (a Guaranteed pod using all memory
	// scores 1000-997 = 3) and below BestEffort.
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return int(adj - 1)
	}
	return int(adj)
}

// isSidecarOf is policy.go isSidecarContainer: restartPolicy Always and named
// among the pod's init containers.
func isSidecarOf(pod *corev1.Pod, c *corev1.Container) bool {
	if !isSidecar(c) {
		return false
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			return true
		}
	}
	return false
}

// minRegularContainerMemory is pkg/kubelet/qos/helpers.go's: the smallest
// memory request among the app containers, init containers left out.
func minRegularContainerMemory(pod *corev1.Pod) int64 {
	least := pod.Spec.Containers[0].Resources.Requests.Memory().Value()
	for _, c := range pod.Spec.Containers[1:] {
		if m := c.Resources.Requests.Memory().Value(); m < least {
			least = m
		}
	}
	return least
}

// remainingPodMemReqPerContainer is pkg/kubelet/qos/helpers.go's: the part of
// the pod-level memory request that no container requests, divided equally
// among all containers, init containers included (KEP-2837, "OOM score
// adjustment").
func remainingPodMemReqPerContainer(pod *corev1.Pod) int64 {
	podMem := pod.Spec.Resources.Requests.Memory()
	if podMem.IsZero() {
		return 0
	}
	n := int64(len(pod.Spec.Containers) + len(pod.Spec.InitContainers))
	if n == 0 {
		return 0
	}
	containers := aggregate(pod, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Requests })
	return (podMem.Value() - containers.Memory().Value()) / n
}
