package eviction

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/agent/resources"
	"github.com/podboot/podboot/internal/device"
)

// Reason is the status reason of an evicted pod, kubelet's.
const Reason = "Evicted"

// Signals are the node's observations, in bytes. MemoryAvailable is
// kubelet's memory.available (capacity less the working set);
// MemoryCapacity is what a percentage threshold of it is taken of.
type Signals struct {
	MemoryAvailable, MemoryCapacity int64
	NodefsAvailable, NodefsCapacity int64
}

// Usage is one pod's measured memory: the pod's working set, and, for the
// eviction message, each container's by name.
type Usage struct {
	Pod                       *corev1.Pod
	MemoryWorkingSet          int64
	ContainerMemoryWorkingSet map[string]int64
}

// signal is one observation: kubelet's signalObservation.
type signal struct {
	available, capacity resource.Quantity
	resource            corev1.ResourceName
	condition           corev1.NodeConditionType
}

// observe maps the device's signal names to observations, as kubelet's
// signalToResource and signalToNodeCondition.
func (s Signals) observe(name string) (signal, bool) {
	switch name {
	case device.SignalMemoryAvailable:
		return signal{byteQuantity(s.MemoryAvailable), byteQuantity(s.MemoryCapacity), corev1.ResourceMemory, corev1.NodeMemoryPressure}, true
	case device.SignalNodeFsAvailable:
		return signal{byteQuantity(s.NodefsAvailable), byteQuantity(s.NodefsCapacity), corev1.ResourceEphemeralStorage, corev1.NodeDiskPressure}, true
	}
	return signal{}, false
}

func byteQuantity(n int64) resource.Quantity { return *resource.NewQuantity(n, resource.BinarySI) }

// Met returns the thresholds whose signal's available amount is below the
// threshold, in the order given: kubelet's thresholdsMet without minimum
// reclaim.
func Met(thresholds []device.Threshold, s Signals) []device.Threshold {
	var out []device.Threshold
	for _, t := range thresholds {
		o, ok := s.observe(t.Signal)
		if !ok {
			continue
		}
		q := t.Value.Of(o.capacity)
		if q.Cmp(o.available) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Pressure returns the node conditions (MemoryPressure, DiskPressure) that
// the met thresholds put the node in, each once, in threshold order:
// kubelet's nodeConditions.
func Pressure(thresholds []device.Threshold, s Signals) []corev1.NodeConditionType {
	var out []corev1.NodeConditionType
	for _, t := range Met(thresholds, s) {
		o, _ := s.observe(t.Signal)
		if !slices.Contains(out, o.condition) {
			out = append(out, o.condition)
		}
	}
	return out
}

// Rank orders pods for eviction under memory pressure, first to evict
// first, as kubelet's rankMemoryPressure: pods whose working set exceeds
// their memory request, then lower priority, then larger use above the
// request. A BestEffort pod requests nothing, so any use puts it first.
// The sort is stable, so pods kubelet calls equal keep the given order.
func Rank(usage []Usage) {
	type ranked struct {
		exceeds  bool
		priority int32
		above    int64 // working set less request
	}
	keys := make(map[*corev1.Pod]ranked, len(usage))
	for _, u := range usage {
		requests := resources.PodRequests(u.Pod)
		req := requests.Memory().Value()
		keys[u.Pod] = ranked{u.MemoryWorkingSet > req, priority(u.Pod), u.MemoryWorkingSet - req}
	}
	slices.SortStableFunc(usage, func(a, b Usage) int {
		ka, kb := keys[a.Pod], keys[b.Pod]
		if ka.exceeds != kb.exceeds {
			if ka.exceeds {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(ka.priority, kb.priority), cmp.Compare(kb.above, ka.above))
	})
}

// priority is corev1helpers.PodPriority: spec.priority, or 0.
func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// Message is the status message of a pod evicted to reclaim resourceName,
// kubelet's evictionMessage text exactly (trailing space included): the
// met threshold and the observation, then every container using more than
// it requests.
func Message(resourceName corev1.ResourceName, thresholds []device.Threshold, s Signals, u Usage) string {
	msg := fmt.Sprintf("The node was low on resource: %v. ", resourceName)
	for _, t := range thresholds {
		o, ok := s.observe(t.Signal)
		if !ok || o.resource != resourceName {
			continue
		}
		q := t.Value.Of(o.capacity)
		msg += fmt.Sprintf("Threshold quantity: %v, available: %v. ", &q, &o.available)
		break
	}
	if resourceName != corev1.ResourceMemory || u.Pod == nil {
		return msg
	}
	containers := append(append([]corev1.Container(nil), u.Pod.Spec.Containers...), u.Pod.Spec.InitContainers...)
	for _, c := range containers {
		used, ok := u.ContainerMemoryWorkingSet[c.Name]
		if !ok {
			continue
		}
		usage := byteQuantity(used)
		request := c.Resources.Requests[resourceName]
		if usage.Cmp(request) > 0 {
			msg += fmt.Sprintf("Container %s was using %s, request is %s, has larger consumption of %v. ", c.Name, usage.String(), request.String(), resourceName)
		}
	}
	return msg
}
