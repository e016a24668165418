package store

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Kinds the store holds, as the API names them.
const (
	KindPod       = "Pod"
	KindNamespace = "Namespace"
	KindNode      = "Node"
	KindEvent     = "Event"
	KindConfigMap = "ConfigMap"
	KindSecret    = "Secret"
	// KindLease is coordination.k8s.io/v1's Lease: the node's heartbeat
	// in kube-node-lease.
	KindLease = "Lease"
	// KindResourceQuota and KindLimitRange are served as empty
	// collections (the board enforces neither); the store never holds
	// one, but they can be watched.
	KindResourceQuota = "ResourceQuota"
	KindLimitRange    = "LimitRange"
)

// Namespaced reports whether objects of kind live in a namespace; it is
// false for cluster-scoped kinds and for kinds the store does not hold.
func Namespaced(kind string) bool {
	switch kind {
	case KindPod, KindEvent, KindConfigMap, KindSecret, KindLease, KindResourceQuota, KindLimitRange:
		return true
	}
	return false
}

// Known reports whether kind can be listed and watched: the kinds the store
// holds, and the two it serves empty.
func Known(kind string) bool {
	switch kind {
	case KindPod, KindNamespace, KindNode, KindEvent, KindConfigMap, KindSecret, KindLease,
		KindResourceQuota, KindLimitRange:
		return true
	}
	return false
}

// kindOf returns the kind of a supported object and its metadata.
func kindOf(obj runtime.Object) (string, *metav1.ObjectMeta, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return KindPod, &o.ObjectMeta, nil
	case *corev1.Namespace:
		return KindNamespace, &o.ObjectMeta, nil
	case *corev1.Node:
		return KindNode, &o.ObjectMeta, nil
	case *corev1.Event:
		return KindEvent, &o.ObjectMeta, nil
	case *corev1.ConfigMap:
		return KindConfigMap, &o.ObjectMeta, nil
	case *corev1.Secret:
		return KindSecret, &o.ObjectMeta, nil
	case *coordinationv1.Lease:
		return KindLease, &o.ObjectMeta, nil
	case nil:
		return "", nil, fmt.Errorf("object is nil")
	}
	return "", nil, fmt.Errorf("unsupported object type %T", obj)
}

// key identifies an object in the store.
type key struct {
	kind, namespace, name string
}

func (k key) String() string {
	if k.namespace == "" {
		return k.kind + " " + k.name
	}
	return k.kind + " " + k.namespace + "/" + k.name
}

// GroupVersionKind is the API group and version objects of kind are
// served in: core v1, or coordination.k8s.io/v1 for Leases.
func GroupVersionKind(kind string) schema.GroupVersionKind {
	if kind == KindLease {
		return coordinationv1.SchemeGroupVersion.WithKind(kind)
	}
	return schema.GroupVersionKind{Version: "v1", Kind: kind}
}
