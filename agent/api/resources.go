package api

import (
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/store"
)

// resource is one served collection: of core v1, or of a named group's
// v1 (coordination.k8s.io for the node's Lease).
type resource struct {
	// group is the API group, "" for core (/api/v1); a named group is
	// served under /apis/<group>/v1.
	group                string
	name, singular, kind string
	namespaced           bool
	shortNames           []string
	categories           []string
	// fields returns the object's selectable fields, as the API server's
	// field label conversions for the kind allow them.
	fields func(runtime.Object) fields.Set
	// columns and row are the kind's Table printer (wide: all columns;
	// the client hides priority-1 columns unless -o wide).
	columns []metav1.TableColumnDefinition
	row     func(obj runtime.Object, now time.Time) []any
}

// resources lists what the API serves, in discovery order.
func resources() []*resource {
	return []*resource{
		{
			name: "pods", singular: "pod", kind: store.KindPod, namespaced: true,
			shortNames: []string{"po"}, categories: []string{"all"},
			fields: podFields, columns: podColumns, row: podRow,
		},
		{
			name: "namespaces", singular: "namespace", kind: store.KindNamespace,
			shortNames: []string{"ns"},
			fields:     namespaceFields, columns: namespaceColumns, row: namespaceRow,
		},
		{
			name: "nodes", singular: "node", kind: store.KindNode,
			shortNames: []string{"no"},
			fields:     nodeFields, columns: nodeColumns, row: nodeRow,
		},
		{
			name: "events", singular: "event", kind: store.KindEvent, namespaced: true,
			shortNames: []string{"ev"},
			fields:     eventFields, columns: eventColumns, row: eventRow,
		},
		{
			name: "configmaps", singular: "configmap", kind: store.KindConfigMap, namespaced: true,
			shortNames: []string{"cm"},
			fields:     objectMetaFields, columns: configMapColumns, row: configMapRow,
		},
		{
			name: "secrets", singular: "secret", kind: store.KindSecret, namespaced: true,
			fields: secretFields, columns: secretColumns, row: secretRow,
		},
		{
			// Read-only and always empty: the board enforces no quota
			// or limit range, and kubectl describe namespace lists both
			// ("No resource quota.", "No LimitRange resource.").
			name: "resourcequotas", singular: "resourcequota", kind: store.KindResourceQuota, namespaced: true,
			shortNames: []string{"quota"},
			fields:     objectMetaFields, columns: resourceQuotaColumns, row: resourceQuotaRow,
		},
		{
			name: "limitranges", singular: "limitrange", kind: store.KindLimitRange, namespaced: true,
			shortNames: []string{"limits"},
			fields:     objectMetaFields, columns: limitRangeColumns, row: limitRangeRow,
		},
		{
			// The API server selects leases by metadata only.
			group: coordinationGroup, name: "leases", singular: "lease", kind: store.KindLease, namespaced: true,
			fields: objectMetaFields, columns: leaseColumns, row: leaseRow,
		},
	}
}

// coordinationGroup serves the node's Lease (kube-node-lease/<node>),
// which kubectl describe node looks up.
const coordinationGroup = "coordination.k8s.io"

// groupVersion is the resource's apiVersion: "v1" or "<group>/v1".
func (res *resource) groupVersion() string {
	return store.GroupVersionKind(res.kind).GroupVersion().String()
}

func metaOf(obj runtime.Object) metav1.Object {
	if o, ok := obj.(metav1.Object); ok {
		return o
	}
	return &metav1.ObjectMeta{}
}

func objectMetaFields(obj runtime.Object) fields.Set {
	m := metaOf(obj)
	set := fields.Set{"metadata.name": m.GetName()}
	if m.GetNamespace() != "" {
		set["metadata.namespace"] = m.GetNamespace()
	}
	return set
}

// podFields mirrors pkg/registry/core/pod.ToSelectableFields.
func podFields(obj runtime.Object) fields.Set {
	set := objectMetaFields(obj)
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return set
	}
	podIP := ""
	if len(p.Status.PodIPs) > 0 {
		podIP = p.Status.PodIPs[0].IP
	}
	set["metadata.namespace"] = p.Namespace
	set["spec.nodeName"] = p.Spec.NodeName
	set["spec.restartPolicy"] = string(p.Spec.RestartPolicy)
	set["spec.schedulerName"] = p.Spec.SchedulerName
	set["spec.serviceAccountName"] = p.Spec.ServiceAccountName
	set["spec.hostNetwork"] = strconv.FormatBool(p.Spec.HostNetwork)
	set["status.phase"] = string(p.Status.Phase)
	set["status.podIP"] = podIP
	set["status.nominatedNodeName"] = p.Status.NominatedNodeName
	return set
}

func namespaceFields(obj runtime.Object) fields.Set {
	set := objectMetaFields(obj)
	if ns, ok := obj.(*corev1.Namespace); ok {
		set["status.phase"] = string(ns.Status.Phase)
	}
	return set
}

func nodeFields(obj runtime.Object) fields.Set {
	set := objectMetaFields(obj)
	if n, ok := obj.(*corev1.Node); ok {
		set["spec.unschedulable"] = strconv.FormatBool(n.Spec.Unschedulable)
	}
	return set
}

// eventFields mirrors pkg/registry/core/event.ToSelectableFields.
func eventFields(obj runtime.Object) fields.Set {
	set := objectMetaFields(obj)
	e, ok := obj.(*corev1.Event)
	if !ok {
		return set
	}
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	set["metadata.namespace"] = e.Namespace
	set["involvedObject.kind"] = e.InvolvedObject.Kind
	set["involvedObject.namespace"] = e.InvolvedObject.Namespace
	set["involvedObject.name"] = e.InvolvedObject.Name
	set["involvedObject.uid"] = string(e.InvolvedObject.UID)
	set["involvedObject.apiVersion"] = e.InvolvedObject.APIVersion
	set["involvedObject.resourceVersion"] = e.InvolvedObject.ResourceVersion
	set["involvedObject.fieldPath"] = e.InvolvedObject.FieldPath
	set["reason"] = e.Reason
	set["reportingComponent"] = e.ReportingController
	set["source"] = source
	set["type"] = e.Type
	return set
}

func secretFields(obj runtime.Object) fields.Set {
	set := objectMetaFields(obj)
	if s, ok := obj.(*corev1.Secret); ok {
		set["type"] = string(s.Type)
	}
	return set
}

// fieldLabels lists the field selector labels res supports.
func (res *resource) fieldLabels() map[string]bool {
	labels := map[string]bool{"metadata.name": true}
	if res.namespaced {
		labels["metadata.namespace"] = true
	}
	for k := range res.fields(zeroObject(res.kind)) {
		labels[k] = true
	}
	return labels
}

func zeroObject(kind string) runtime.Object {
	switch kind {
	case store.KindPod:
		return &corev1.Pod{}
	case store.KindNamespace:
		return &corev1.Namespace{}
	case store.KindNode:
		return &corev1.Node{}
	case store.KindEvent:
		return &corev1.Event{}
	case store.KindConfigMap:
		return &corev1.ConfigMap{}
	case store.KindSecret:
		return &corev1.Secret{}
	case store.KindLease:
		return &coordinationv1.Lease{}
	case store.KindResourceQuota:
		return &corev1.ResourceQuota{}
	case store.KindLimitRange:
		return &corev1.LimitRange{}
	}
	return &metav1.PartialObjectMetadata{}
}
