package resources

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PodRequests returns the pod's effective requests as kubelet and the
// scheduler compute them (k8s.io/component-helpers/resource PodRequests with
// no options): max(sum of app containers + restartable (sidecar) init
// containers, each regular init container + the sidecars started before it);
// pod-level spec.resources.requests replace that sum for the resources
// PodLevelResources supports (cpu, memory, hugepages-*); spec.overhead is
// added last.
func PodRequests(pod *corev1.Pod) corev1.ResourceList {
	reqs := aggregate(pod, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Requests })
	if podLevelRequestsSet(pod) {
		applyPodLevel(reqs, pod.Spec.Resources.Requests)
	}
	if pod.Spec.Overhead != nil {
		add(reqs, pod.Spec.Overhead)
	}
	return reqs
}

// PodLimits returns the pod's limits as component-helpers PodLimits computes
// them: the same sidecar-aware aggregation over the containers that set a
// limit (a resource is listed when any container limits it), pod-level
// spec.resources.limits in place of that, and spec.overhead added to every
// non-zero limit. It is what the scheduler and eviction see; the pod cgroup's
// limits, which exist only when every container sets one, are PodCgroup's.
func PodLimits(pod *corev1.Pod) corev1.ResourceList {
	limits := aggregate(pod, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Limits })
	if podLevelResourcesSet(pod) {
		applyPodLevel(limits, pod.Spec.Resources.Limits)
	}
	for name, q := range pod.Spec.Overhead {
		if v, ok := limits[name]; ok && !v.IsZero() {
			v.Add(q)
			limits[name] = v
		}
	}
	return limits
}

// aggregate is component-helpers' aggregateContainerResourcesByFn over the
// spec: app containers and sidecars add up; each regular init container runs
// beside the sidecars declared before it, and the pod needs the larger of the
// two phases (KEP-753, "Resources calculation for scheduling and pod admission").
func aggregate(pod *corev1.Pod, of func(*corev1.Container) corev1.ResourceList) corev1.ResourceList {
	result := corev1.ResourceList{}
	for i := range pod.Spec.Containers {
		add(result, of(&pod.Spec.Containers[i]))
	}
	sidecars := corev1.ResourceList{}
	initPeak := corev1.ResourceList{}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		var phase corev1.ResourceList
		if isSidecar(c) {
			add(result, of(c))
			add(sidecars, of(c))
			phase = sidecars
		} else {
			phase = corev1.ResourceList{}
			add(phase, of(c))
			add(phase, sidecars)
		}
		maxInto(initPeak, phase)
	}
	maxInto(result, initPeak)
	return result
}

// isSidecar reports a restartable init container (restartPolicy: Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// podLevelSupported is component-helpers IsSupportedPodLevelResource.
func podLevelSupported(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory ||
		strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

func anySupported(list corev1.ResourceList) bool {
	for name := range list {
		if podLevelSupported(name) {
			return true
		}
	}
	return false
}

// podLevelRequestsSet is component-helpers IsPodLevelRequestsSet.
func podLevelRequestsSet(pod *corev1.Pod) bool {
	return pod.Spec.Resources != nil && anySupported(pod.Spec.Resources.Requests)
}

// podLevelLimitsSet is component-helpers IsPodLevelLimitsSet.
func podLevelLimitsSet(pod *corev1.Pod) bool {
	return pod.Spec.Resources != nil && anySupported(pod.Spec.Resources.Limits)
}

// podLevelResourcesSet is component-helpers IsPodLevelResourcesSet: pod-level
// requests or limits of a supported resource.
func podLevelResourcesSet(pod *corev1.Pod) bool {
	return podLevelRequestsSet(pod) || podLevelLimitsSet(pod)
}

// applyPodLevel overwrites result with the pod-level values of the supported
// resources (component-helpers applyPodLevelResources).
func applyPodLevel(result, podLevel corev1.ResourceList) {
	for name, q := range podLevel {
		if podLevelSupported(name) {
			result[name] = q.DeepCopy()
		}
	}
}

func add(list, more corev1.ResourceList) {
	for name, q := range more {
		if v, ok := list[name]; ok {
			v.Add(q)
			list[name] = v
		} else {
			list[name] = q.DeepCopy()
		}
	}
}

func maxInto(list, other corev1.ResourceList) {
	for name, q := range other {
		if v, ok := list[name]; !ok || q.Cmp(v) > 0 {
			list[name] = q.DeepCopy()
		}
	}
}
