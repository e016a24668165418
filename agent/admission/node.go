package admission

import (
	goruntime "runtime"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Kubelet's refusals of a pod meant for another node. NodeAffinity and
// NodeName are scheduler predicates that predicate.go's generalFilter
// wraps in a PredicateFailureError: the reason is the plugin's name, the
// message "Predicate <name> failed: <the plugin's ErrReason>". The OS
// refusals are predicate.go's own.
const (
	NodeAffinity                       = "NodeAffinity"
	NodeName                           = "NodeName"
	PodOSSelectorNodeLabelDoesNotMatch = "PodOSSelectorNodeLabelDoesNotMatch"
	PodOSNotSupported                  = "PodOSNotSupported"

	nodeAffinityMessage = "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
	nodeNameMessage     = "Predicate NodeName failed: node(s) didn't match the requested node name"
	osSelectorMessage   = "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"
	osFieldMessage      = "Failed to admit pod as the OS field doesn't match node OS"
)

// osRefusal is predicate.go's first checks, made before any other because
// no preemption could help them: rejectPodAdmissionBasedOnOSSelector (a
// kubernetes.io/os label on the pod — its labels, not its nodeSelector —
// that names another OS than the node's, which kubelet takes to be the
// one it was built for) and rejectPodAdmissionBasedOnOSField (spec.os).
func osRefusal(pod *corev1.Pod) (Decision, bool) {
	if os, ok := pod.Labels[corev1.LabelOSStable]; ok && os != goruntime.GOOS {
		return Decision{Reason: PodOSSelectorNodeLabelDoesNotMatch, Message: osSelectorMessage}, true
	}
	if pod.Spec.OS != nil && string(pod.Spec.OS.Name) != goruntime.GOOS {
		return Decision{Reason: PodOSNotSupported, Message: osFieldMessage}, true
	}
	return Decision{}, false
}

// affinityFits is the scheduler's AdmissionCheck on node affinity:
// nodeSelector and the required node affinity (matchExpressions on the
// node's labels, matchFields on metadata.name), through the same
// component-helpers matcher the scheduler and kubelet use. As in
// AdmissionCheck, an affinity that does not parse matches no node.
func affinityFits(pod *corev1.Pod, node *corev1.Node) bool {
	ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)
	return ok
}

// nameFits is the NodeName plugin's Fits: a pod that names a node must
// name this one.
func nameFits(pod *corev1.Pod, node *corev1.Node) bool {
	return pod.Spec.NodeName == "" || pod.Spec.NodeName == node.Name
}
