package podagent

import (
	"log/slog"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

// builtinNamespaces exist on every Kubernetes cluster; kubectl users expect
// them.
var builtinNamespaces = []string{"default", "kube-node-lease", "kube-public", "kube-system"}

// desiredSetter is the part of the reconcile manager that takes desired pods.
type desiredSetter interface {
	SetDesired(pods []*corev1.Pod)
}

// manifestApplier applies a manifest Set: pods to the manager, namespaces
// to the store, and each rejected document as a log line and a Warning
// event, so `kubectl get events` shows why a pod is not there.
type manifestApplier struct {
	st   *store.Store
	mgr  desiredSetter
	rec  *store.Recorder
	node *corev1.Node
	log  *slog.Logger
	// reported remembers errors already turned into events, so a resync
	// does not repeat them.
	reported map[string]bool
	// applied, when set, runs after each Set is handed to the manager.
	applied func()
}

func (a *manifestApplier) apply(set *manifest.Set) {
	a.mgr.SetDesired(set.Pods)
	a.applyNamespaces(set)
	seen := map[string]bool{}
	for _, e := range set.Errors {
		msg := e.Error()
		seen[msg] = true
		if a.reported[msg] {
			continue
		}
		a.log.Error("manifest rejected", "file", e.File, "document", e.Index, "kind", e.Kind, "namespace", e.Namespace, "name", e.Name, "field", e.Field, "err", e.Err)
		a.rec.Eventf(a.eventTarget(e), corev1.EventTypeWarning, "FailedManifest", "%s", msg)
	}
	a.reported = seen
	if a.applied != nil {
		a.applied()
	}
	a.log.Info("manifests applied", "pods", len(set.Pods), "errors", len(set.Errors))
}

// eventTarget is the object the event is about: the rejected object when the
// document named one, else the node.
func (a *manifestApplier) eventTarget(e *manifest.DocumentError) runtime.Object {
	if e.Kind == "Pod" && e.Name != "" {
		ns := e.Namespace
		if ns == "" {
			ns = "default"
		}
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: e.Name, Namespace: ns}}
	}
	return a.node
}

// applyNamespaces publishes the built-in namespaces, the declared ones and
// every namespace a pod uses (a static pod's namespace need not be declared).
func (a *manifestApplier) applyNamespaces(set *manifest.Set) {
	want := map[string]*corev1.Namespace{}
	for _, n := range builtinNamespaces {
		want[n] = nil
	}
	for _, p := range set.Pods {
		if _, ok := want[p.Namespace]; !ok {
			want[p.Namespace] = nil
		}
	}
	for _, ns := range set.Namespaces {
		want[ns.Name] = ns
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ns := want[n]
		old, exists := a.st.Get("Namespace", "", n)
		if exists && ns == nil {
			continue // an implicit namespace already published
		}
		if ns == nil {
			ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n, UID: nodeUID("namespace/" + n)}}
		} else {
			ns = ns.DeepCopy()
		}
		ns.TypeMeta = metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}
		if ns.CreationTimestamp.IsZero() {
			if exists {
				ns.CreationTimestamp = old.(*corev1.Namespace).CreationTimestamp
			} else {
				ns.CreationTimestamp = metav1.Now()
			}
		}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels["kubernetes.io/metadata.name"] = n
		ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		ns.Status.Phase = corev1.NamespaceActive
		if err := a.st.Put(ns); err != nil {
			a.log.Error("publish namespace", "namespace", n, "err", err)
		}
	}
	// Namespaces no longer wanted are removed from the store.
	objs, _ := a.st.List("Namespace", "")
	for _, o := range objs {
		ns := o.(*corev1.Namespace)
		if _, ok := want[ns.Name]; !ok {
			_ = a.st.Delete("Namespace", "", ns.Name)
		}
	}
}
