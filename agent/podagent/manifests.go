package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

// builtinNamespaces exist on every Kubernetes cluster; kubectl users expect
// them.
var builtinNamespaces = []string{"default", "kube-node-lease", "kube-public", "kube-system"}

// desiredSetter is the part of the reconcile manager that takes desired pods.
type desiredSetter interface {
	SetDesired(pods []*corev1.Pod)
	// SetDeletionGrace is an API delete's grace for the pod's termination,
	// called before the SetDesired that no longer holds it.
	SetDeletionGrace(uid types.UID, seconds int64)
}

// annotationOTAGeneration is on every pod of the fleet set: the OTA
// generation it came from, for `kubectl get pod -o yaml` and the health
// gate. agent/manifest leaves annotations out of the UID, so a pod that
// is the same in the next generation keeps running.
const annotationOTAGeneration = "podboot.dev/ota-generation"

// manifestApplier applies the desired state: the union of the board's own
// manifest Set (the watcher's) and the running OTA generation's (SetFleet),
// the own one winning a collision. Pods go to the manager; namespaces,
// configmaps and secrets to the store; each rejected document and each
// collision become a log line and a Warning event, so `kubectl get events`
// shows why a pod is not there. The watcher, the API's Flash (through the
// watcher) and SetFleet apply through it, one at a time (applyMu).
type manifestApplier struct {
	st   *store.Store
	mgr  desiredSetter
	rec  *store.Recorder
	node *corev1.Node
	log  *slog.Logger
	now  func() time.Time // nil: time.Now
	// reported remembers errors already turned into events, so a resync
	// does not repeat them.
	reported map[string]bool
	// applied, when set, runs after each Set is handed to the manager.
	applied func()

	// applyMu makes each apply one step; reported and collided are its.
	applyMu sync.Mutex
	// collided remembers collisions already reported, as reported does
	// errors.
	collided map[string]bool

	mu sync.Mutex // the namespaces in the store (apply, finalizeNamespaces), the fields below
	// own is the watcher's last Set (nil before the first); fleet the
	// running OTA generation's (nil: none) and generation its number.
	// Written holding applyMu and mu, so either lock reads them.
	own        *manifest.Set
	fleet      *manifest.Set
	generation uint64
	// pods is the last Set's pods by namespace/name; nil before the first.
	pods map[string]*corev1.Pod
	// awaiting are the pods whose change the store does not show yet
	// (nil: removed), with the time after which they are no longer waited
	// for; see settled.
	awaiting map[string]awaited
}

type awaited struct {
	pod   *corev1.Pod // nil: removed
	until time.Time
}

// awaitBound is how long a pod change is waited for in the store: a worker
// publishes a new pod or new metadata within a sync, a replacement only
// once the old pod is gone, which is not waited for.
const awaitBound = 10 * time.Second

func (a *manifestApplier) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// apply is the watcher's onChange: own is the board's own Set, applied
// with the current fleet set.
func (a *manifestApplier) apply(own *manifest.Set) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	a.own = own
	a.mu.Unlock()
	a.applyLocked()
}

// setFleet makes set (nil: none) the fleet set, of OTA generation
// generation, and applies it with the watcher's last own Set at once: the
// previous generation's pods that set does not hold go, as a whole.
// Before the watcher's first Set it only remembers set, so that the first
// apply holds both (a first apply without the fleet pods would stop those
// the reconcile manager restored).
func (a *manifestApplier) setFleet(set *manifest.Set, generation uint64) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	a.fleet, a.generation = set, generation
	if set == nil {
		a.generation = 0
	}
	first := a.own == nil
	a.mu.Unlock()
	if first {
		return
	}
	a.applyLocked()
}

// ownSet is the watcher's last Set (nil before the first).
func (a *manifestApplier) ownSet() *manifest.Set {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.own
}

// fleetManaged reports whether key is the fleet set's (it defines it and
// the board's own Set does not), and the generation it comes from.
func (a *manifestApplier) fleetManaged(key manifest.ObjectKey) (uint64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fleet == nil {
		return 0, false
	}
	if a.own != nil {
		if _, own := a.own.Source(key); own {
			return 0, false
		}
	}
	_, ok := a.fleet.Source(key)
	return a.generation, ok
}

// fleetUses reports whether the fleet set (not the board's own) declares
// the namespace or defines an object in it, and the generation.
func (a *manifestApplier) fleetUses(namespace string) (uint64, bool) {
	a.mu.Lock()
	fleet, gen := a.fleet, a.generation
	a.mu.Unlock()
	if fleet == nil {
		return 0, false
	}
	if g, ok := a.fleetManaged(manifest.ObjectKey{Kind: store.KindNamespace, Name: namespace}); ok {
		return g, true
	}
	for _, p := range fleet.Pods {
		if p.Namespace == namespace {
			return gen, true
		}
	}
	for _, c := range fleet.ConfigMaps {
		if c.Namespace == namespace {
			return gen, true
		}
	}
	for _, c := range fleet.Secrets {
		if c.Namespace == namespace {
			return gen, true
		}
	}
	return 0, false
}

// applyLocked applies the union of the own and fleet sets; applyMu is held.
func (a *manifestApplier) applyLocked() {
	a.mu.Lock()
	own, fleet, generation := a.own, a.fleet, a.generation
	a.mu.Unlock()
	set, collisions := manifest.Union(own, fleet)
	pods := make([]*corev1.Pod, len(set.Pods))
	for i, p := range set.Pods {
		pods[i] = p
		if set.FromFleet(manifest.ObjectKey{Kind: store.KindPod, Namespace: p.Namespace, Name: p.Name}) {
			pods[i] = withAnnotation(p, annotationOTAGeneration, fmt.Sprint(generation))
		}
	}
	a.mu.Lock()
	a.expectLocked(pods)
	a.mu.Unlock()
	a.mgr.SetDesired(pods)
	a.applyNamespaces(set)
	a.applyConfigData(set)
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
	a.reportCollisions(set, own, fleet, generation, collisions)
	if a.applied != nil {
		a.applied()
	}
	a.log.Info("manifests applied", "pods", len(set.Pods), "configmaps", len(set.ConfigMaps), "secrets", len(set.Secrets), "errors", len(set.Errors), "otaGeneration", generation, "collisions", len(collisions))
}

// reportCollisions logs, and leaves a Warning event on the board's own
// object for, each object the board's own manifests and the fleet set
// both define, once while it lasts. A bundle that collides is refused, so
// this is a file added by hand after its generation was committed.
func (a *manifestApplier) reportCollisions(set, own, fleet *manifest.Set, generation uint64, collisions []manifest.ObjectKey) {
	seen := map[string]bool{}
	for _, k := range collisions {
		ownAt, _ := own.Source(k)
		fleetAt, _ := fleet.Source(k)
		fleetFile := fmt.Sprintf("ota/gen/%020d/pods/%s", generation, fleetAt.File)
		msg := fmt.Sprintf("%s is defined by the board's own manifest pods/%s, document %d, and by OTA generation %d's %s, document %d: the board's own is kept (remove one of them)",
			k, ownAt.File, ownAt.Index, generation, fleetFile, fleetAt.Index)
		seen[msg] = true
		if a.collided[msg] {
			continue
		}
		a.log.Warn("manifest collides with the OTA generation's", "kind", k.Kind, "namespace", k.Namespace, "name", k.Name,
			"file", "pods/"+ownAt.File, "document", ownAt.Index, "otaGeneration", generation, "otaFile", fleetFile, "otaDocument", fleetAt.Index)
		if obj, ok := set.Object(k); ok {
			a.rec.Eventf(obj, corev1.EventTypeWarning, "OTACollision", "%s", msg)
		}
	}
	a.collided = seen
}

// withAnnotation is a shallow copy of p with the annotation set; p, shared
// with the Set it came from, is not changed.
func withAnnotation(p *corev1.Pod, key, value string) *corev1.Pod {
	out := *p
	out.Annotations = maps.Clone(p.Annotations)
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[key] = value
	return &out
}

// expectLocked records which pods changed since the last Set (new, a new
// UID, new labels or annotations, removed), for settled. The first Set's
// pods are not awaited: at boot they publish as their workers start.
func (a *manifestApplier) expectLocked(pods []*corev1.Pod) {
	next := make(map[string]*corev1.Pod, len(pods))
	for _, p := range pods {
		next[p.Namespace+"/"+p.Name] = p
	}
	first := a.pods == nil
	prev := a.pods
	a.pods = next
	if first {
		return
	}
	if a.awaiting == nil {
		a.awaiting = map[string]awaited{}
	}
	until := a.clock().Add(awaitBound)
	for k, p := range next {
		if old, ok := prev[k]; !ok || old.UID != p.UID || !sameMetadata(old, p) {
			a.awaiting[k] = awaited{pod: p, until: until}
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			a.awaiting[k] = awaited{until: until}
		}
	}
}

// sameMetadata compares what a pod's worker republishes under the same
// UID: labels, annotations and the spec (the fields a pod update may
// change, e.g. an image, which restarts that container in place).
func sameMetadata(a, b *corev1.Pod) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		equality.Semantic.DeepEqual(a.Spec, b.Spec)
}

// settled reports whether the store shows every pod change applied
// (dropping those that are settled or waited for long enough): a pod with
// its UID and metadata, a replaced pod terminating, a removed pod
// terminating or gone. Until then a write would be checked against a stale
// resourceVersion.
func (a *manifestApplier) settled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock()
	for k, w := range a.awaiting {
		if now.After(w.until) || a.showsLocked(k, w.pod) {
			delete(a.awaiting, k)
		}
	}
	return len(a.awaiting) == 0
}

func (a *manifestApplier) showsLocked(key string, want *corev1.Pod) bool {
	ns, name, _ := strings.Cut(key, "/")
	obj, ok := a.st.Get(store.KindPod, ns, name)
	if !ok {
		return want == nil
	}
	have := obj.(*corev1.Pod)
	switch {
	case want == nil || have.UID != want.UID:
		return have.DeletionTimestamp != nil
	default:
		return sameMetadata(have, want)
	}
}

// waitSettled waits, polling the store, until settled or ctx ends.
func (a *manifestApplier) waitSettled(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !a.settled() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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

// applyConfigData publishes the Set's configmaps and secrets and removes
// those whose documents went.
func (a *manifestApplier) applyConfigData(set *manifest.Set) {
	want := map[string]bool{}
	put := func(kind string, obj runtime.Object, ns, name string) {
		want[kind+"/"+ns+"/"+name] = true
		if err := a.st.Put(obj); err != nil {
			a.log.Error("publish "+kind, "namespace", ns, "name", name, "err", err)
		}
	}
	for _, cm := range set.ConfigMaps {
		put(store.KindConfigMap, cm.DeepCopy(), cm.Namespace, cm.Name)
	}
	for _, s := range set.Secrets {
		put(store.KindSecret, s.DeepCopy(), s.Namespace, s.Name)
	}
	for _, kind := range []string{store.KindConfigMap, store.KindSecret} {
		objs, _ := a.st.List(kind, "")
		for _, o := range objs {
			m, _ := metaAccessor(o)
			if !want[kind+"/"+m.Namespace+"/"+m.Name] {
				_ = a.st.Delete(kind, m.Namespace, m.Name)
			}
		}
	}
}

func metaAccessor(obj runtime.Object) (*metav1.ObjectMeta, bool) {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		return &o.ObjectMeta, true
	case *corev1.Secret:
		return &o.ObjectMeta, true
	case *corev1.Namespace:
		return &o.ObjectMeta, true
	case *corev1.Pod:
		return &o.ObjectMeta, true
	}
	return &metav1.ObjectMeta{}, false
}

// applyNamespaces publishes the built-in namespaces, the declared ones and
// every namespace a pod uses (a static pod's namespace need not be declared).
// A namespace no longer wanted is Terminating, with a deletionTimestamp,
// while the store still holds pods in it, and removed once they are gone
// (finalizeNamespaces), as the namespace controller does.
func (a *manifestApplier) applyNamespaces(set *manifest.Set) {
	a.mu.Lock()
	defer a.mu.Unlock()
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
		if exists && ns == nil && old.(*corev1.Namespace).DeletionTimestamp == nil {
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
	// Namespaces no longer wanted terminate, then go.
	objs, _ := a.st.List("Namespace", "")
	for _, o := range objs {
		ns := o.(*corev1.Namespace)
		if _, ok := want[ns.Name]; !ok {
			a.terminateNamespaceLocked(ns)
		}
	}
}

// terminateNamespaceLocked removes ns from the store if no pod is left in
// it, and otherwise shows it Terminating.
func (a *manifestApplier) terminateNamespaceLocked(ns *corev1.Namespace) {
	if pods, _ := a.st.List(store.KindPod, ns.Name); len(pods) == 0 {
		_ = a.st.Delete("Namespace", "", ns.Name)
		return
	}
	if ns.DeletionTimestamp != nil {
		return
	}
	now := metav1.NewTime(a.clock().Truncate(time.Second))
	ns.DeletionTimestamp = &now
	ns.Status.Phase = corev1.NamespaceTerminating
	if err := a.st.Put(ns); err != nil {
		a.log.Error("terminate namespace", "namespace", ns.Name, "err", err)
	}
}

// finalizeNamespaces removes each Terminating namespace once its last pod
// is gone from the store, until ctx ends.
func (a *manifestApplier) finalizeNamespaces(ctx context.Context) error {
	for ctx.Err() == nil {
		// "": start with the pods there are; a closed channel (a watcher
		// that fell behind) watches again.
		events, err := a.st.Watch(ctx, store.KindPod, "", "")
		if err != nil {
			return err
		}
		a.finalizeOnce()
		for ev := range events {
			if ev.Type == watch.Deleted {
				a.finalizeOnce()
			}
		}
	}
	return nil
}

func (a *manifestApplier) finalizeOnce() {
	a.mu.Lock()
	defer a.mu.Unlock()
	objs, _ := a.st.List("Namespace", "")
	for _, o := range objs {
		if ns := o.(*corev1.Namespace); ns.DeletionTimestamp != nil {
			a.terminateNamespaceLocked(ns)
		}
	}
}
