package manifest

import (
	"crypto/md5"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// objectUID is kubelet's static-pod rule (pkg/kubelet/config/common.go):
// an MD5 over "host:<node>" and the decoded, defaulted object. Unlike
// kubelet it leaves out the file name, so a document moved to another file
// keeps its UID, and the object's labels, annotations and managedFields,
// so a metadata-only change (kubectl label, annotate, an apply that only
// changes labels) keeps the pod, as kubelet keeps an API pod's containers
// when only its metadata changes. A pod's hash also leaves out the spec
// fields the API server lets a pod update change (uidSpec), so that
// `kubectl set image`, or the same edit of a file, keeps the pod and
// kubelet's rule for an updated pod restarts only the changed container.
// The object is hashed as its JSON encoding, which is deterministic
// (struct order, sorted map keys) where kubelet used a spew dump. The
// digest is formatted as a version 3 (MD5, name-based) UUID.
func objectUID(nodeName string, obj any) (types.UID, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		obj = uidSpec(pod)
	}
	m := metaOf(obj)
	labels, annotations, managed, uid := m.Labels, m.Annotations, m.ManagedFields, m.UID
	m.Labels, m.Annotations, m.ManagedFields, m.UID = nil, nil, nil, ""
	b, err := json.Marshal(obj)
	m.Labels, m.Annotations, m.ManagedFields, m.UID = labels, annotations, managed, uid
	if err != nil {
		return "", fmt.Errorf("encode object for UID: %w", err)
	}
	h := md5.New()
	fmt.Fprintf(h, "host:%s", nodeName)
	h.Write(b)
	return UIDFromMD5(h.Sum(nil)), nil
}

// UIDFromMD5 formats an MD5 digest as a version 3 (MD5, name-based) UUID,
// the form of every static-pod UID.
func UIDFromMD5(sum []byte) types.UID {
	var u [16]byte
	copy(u[:], sum)
	u[6] = u[6]&0x0f | 0x30 // version 3
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]))
}

// uidSpec is a shallow copy of pod without the spec fields the API
// server's pod update allows to change (ValidatePodUpdate):
// spec.containers[*].image, spec.initContainers[*].image,
// spec.activeDeadlineSeconds, spec.tolerations (additions) and
// spec.terminationGracePeriodSeconds. pod itself is not changed.
func uidSpec(pod *corev1.Pod) *corev1.Pod {
	p := *pod
	p.Spec.Containers = withoutImages(pod.Spec.Containers)
	p.Spec.InitContainers = withoutImages(pod.Spec.InitContainers)
	p.Spec.ActiveDeadlineSeconds = nil
	p.Spec.Tolerations = nil
	p.Spec.TerminationGracePeriodSeconds = nil
	return &p
}

func withoutImages(cs []corev1.Container) []corev1.Container {
	if cs == nil {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		c.Image = ""
		out[i] = c
	}
	return out
}
