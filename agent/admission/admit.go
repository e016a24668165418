package admission

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/resources"
)

// Kubelet's admission reasons (pkg/kubelet/lifecycle/predicate.go): "OutOf"
// and the resource name.
const (
	OutOfCPU              = "OutOfcpu"
	OutOfMemory           = "OutOfmemory"
	OutOfEphemeralStorage = "OutOfephemeral-storage"
	OutOfPods             = "OutOfpods"
)

// Decision is kubelet's PodAdmitResult: a refused pod goes Failed with
// this Reason and Message.
type Decision struct {
	Admit           bool
	Reason, Message string
}

// insufficient is kubelet's InsufficientResourceError; cpu is in
// millicores, memory and storage in bytes.
type insufficient struct {
	name                      corev1.ResourceName
	requested, used, capacity int64
}

func (e insufficient) decision() Decision {
	return Decision{
		Reason:  "OutOf" + string(e.name),
		Message: fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", e.name, e.requested, e.used, e.capacity),
	}
}

// Admit decides whether pod may run on node beside the admitted pods (the
// ones running or about to run; terminated pods are left out, as kubelet's
// filterOutInactivePods does). The checks and their order are kubelet's
// predicate admit handler's: the pod's OS, then the scheduler's
// AdmissionCheck — noderesources' fitsRequest against the node's
// allocatable (pods, cpu, memory, ephemeral-storage), NodeAffinity
// (nodeSelector and required node affinity against the node's labels and
// name), NodeName, NodePorts; the first failure is the reason. Extended
// resources are dropped as kubelet does for those the node lacks (a board
// has none). Taints are not checked: kubelet checks them for no static
// pod, and every pod here is one.
func Admit(pod *corev1.Pod, admitted []*corev1.Pod, node *corev1.Node) Decision {
	if d, refused := osRefusal(pod); refused {
		return d
	}
	if f, ok := fits(pod, admitted, node.Status.Allocatable); !ok {
		return f.decision()
	}
	if !affinityFits(pod, node) {
		return Decision{Reason: NodeAffinity, Message: nodeAffinityMessage}
	}
	if !nameFits(pod, node) {
		return Decision{Reason: NodeName, Message: nodeNameMessage}
	}
	if !portsFit(pod, admitted) {
		return Decision{Reason: NodePorts, Message: nodePortsMessage}
	}
	return Decision{Admit: true}
}

func fits(pod *corev1.Pod, admitted []*corev1.Pod, allocatable corev1.ResourceList) (insufficient, bool) {
	allowedPods := allocatable.Pods().Value()
	if int64(len(admitted))+1 > allowedPods {
		return insufficient{corev1.ResourcePods, 1, int64(len(admitted)), allowedPods}, false
	}
	req := resources.PodRequests(pod)
	reqCPU, reqMem, reqStorage := req.Cpu().MilliValue(), req.Memory().Value(), req.StorageEphemeral().Value()
	if reqCPU == 0 && reqMem == 0 && reqStorage == 0 {
		return insufficient{}, true
	}
	var usedCPU, usedMem, usedStorage int64
	for _, p := range admitted {
		r := resources.PodRequests(p)
		usedCPU += r.Cpu().MilliValue()
		usedMem += r.Memory().Value()
		usedStorage += r.StorageEphemeral().Value()
	}
	if a := allocatable.Cpu().MilliValue(); a < reqCPU+usedCPU {
		return insufficient{corev1.ResourceCPU, reqCPU, usedCPU, a}, false
	}
	if a := allocatable.Memory().Value(); a < reqMem+usedMem {
		return insufficient{corev1.ResourceMemory, reqMem, usedMem, a}, false
	}
	// Capacity reports no ephemeral-storage yet: then, as kubelet did before
	// local storage isolation, storage requests are not checked.
	if a, ok := allocatable[corev1.ResourceEphemeralStorage]; ok && a.Value() < reqStorage+usedStorage {
		return insufficient{corev1.ResourceEphemeralStorage, reqStorage, usedStorage, a.Value()}, false
	}
	return insufficient{}, true
}

// Order sorts pods the way kubelet admits them at start, oldest creation
// timestamp first (HandlePodAdditions sorts by creation time), then by
// namespace/name so that pods of equal age, as manifests on the same flash
// often are, are always admitted in the same order.
func Order(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}
