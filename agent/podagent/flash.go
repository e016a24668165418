package podagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

// manifestDir is the part of the manifest Watcher the Flash writes through.
type manifestDir interface {
	Refresh(ctx context.Context) (*manifest.Snapshot, error)
	Apply(ctx context.Context, snap *manifest.Snapshot, changes []manifest.Change) (*manifest.Snapshot, error)
}

// flash is api.Flash: the API's writes as manifest documents in the
// flash's pods directory, applied through the watcher's own path (one
// lock, one decoder, one applier), so a write is on the flash, and in the
// store, before the API answers.
type flash struct {
	dir   manifestDir
	apply *manifestApplier
	st    *store.Store
	rec   *store.Recorder
	opts  manifest.Options
	log   *slog.Logger
	// wait bounds how long a write waits for the store to show it.
	wait time.Duration

	mu   sync.Mutex
	snap *manifest.Snapshot // what the last Refresh or write read
}

var _ api.Flash = (*flash)(nil)

func newFlash(dir manifestDir, apply *manifestApplier, st *store.Store, rec *store.Recorder, opts manifest.Options, log *slog.Logger) *flash {
	return &flash{dir: dir, apply: apply, st: st, rec: rec, opts: opts, log: log, wait: awaitBound}
}

// Refresh reads the manifest directory now, applies what changed and waits
// (bounded) until the store shows it, so the write that follows is checked
// against the objects' new resourceVersions.
func (f *flash) Refresh(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, err := f.dir.Refresh(ctx)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	f.snap = snap
	f.waitSettled(ctx)
	return nil
}

func (f *flash) waitSettled(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	f.apply.waitSettled(ctx)
}

// snapshotLocked is the last Refresh's snapshot, read now if there is none.
func (f *flash) snapshotLocked(ctx context.Context) (*manifest.Snapshot, error) {
	if f.snap != nil {
		return f.snap, nil
	}
	snap, err := f.dir.Refresh(ctx)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	f.snap = snap
	return snap, nil
}

func (f *flash) Save(ctx context.Context, obj runtime.Object, w api.WriteInfo) (runtime.Object, error) {
	key, ok := manifest.KeyOf(obj)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("objects of type %T are not kept on the flash", obj))
	}
	checked, err := manifest.Check(obj, f.opts)
	if err != nil {
		return nil, invalid(key, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, err := f.snapshotLocked(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.refuseFleet(key, false); err != nil {
		return nil, err
	}
	_, exists := snap.Set.Source(key)
	if !exists && key.Namespace != "" {
		// The namespace lifecycle admission's refusal.
		if o, ok := f.st.Get(store.KindNamespace, "", key.Namespace); ok && o.(*corev1.Namespace).DeletionTimestamp != nil {
			return nil, apierrors.NewForbidden(groupResource(key.Kind), key.Name,
				fmt.Errorf("unable to create new content in namespace %s because it is being terminated", key.Namespace))
		}
	}
	if w.DryRun {
		return f.asStored(key, checked), nil
	}
	next, err := f.dir.Apply(ctx, snap, []manifest.Change{{Key: key, Object: obj}})
	if next != nil {
		f.snap = next
	}
	if err != nil {
		return nil, f.writeError(key, "save", err)
	}
	f.waitSettled(ctx)
	stored := f.asStored(key, checked)
	if at, ok := next.Set.Source(key); ok {
		f.log.Info("manifest saved", "kind", key.Kind, "namespace", key.Namespace, "name", key.Name, "file", at.File, "document", at.Index, "user", w.User, "fieldManager", w.FieldManager)
		f.rec.Eventf(stored, corev1.EventTypeNormal, "ManifestSaved", "Saved to manifest pods/%s, document %d, by %s", at.File, at.Index, writer(w))
	}
	return stored, nil
}

// asStored is the object as the store holds it once checked is applied:
// the store's object when it has that one (same UID), otherwise checked
// with what the store keeps of the object it replaces (creationTimestamp,
// resourceVersion, a pod's status), as a dry run answers.
func (f *flash) asStored(key manifest.ObjectKey, checked runtime.Object) runtime.Object {
	want, _ := metaAccessor(checked)
	live, ok := f.st.Get(key.Kind, key.Namespace, key.Name)
	if !ok {
		return checked
	}
	have, _ := metaAccessor(live)
	if have.UID == want.UID && key.Kind != store.KindPod {
		return live
	}
	if p, isPod := live.(*corev1.Pod); isPod && have.UID == want.UID && sameMetadata(p, checked.(*corev1.Pod)) {
		return live
	}
	out := checked.DeepCopyObject()
	m, _ := metaAccessor(out)
	m.CreationTimestamp, m.ResourceVersion = have.CreationTimestamp, have.ResourceVersion
	switch o := out.(type) {
	case *corev1.Pod:
		if have.UID == want.UID {
			o.Status = live.(*corev1.Pod).Status
		} else {
			o.Status = corev1.PodStatus{Phase: corev1.PodPending}
		}
	case *corev1.Namespace:
		o.Status = live.(*corev1.Namespace).Status
	}
	return out
}

func (f *flash) Remove(ctx context.Context, kind, namespace, name string, grace *int64, w api.WriteInfo) (runtime.Object, error) {
	gr := groupResource(kind)
	key := manifest.ObjectKey{Kind: kind, Namespace: namespace, Name: name}
	if kind == store.KindNamespace {
		key.Namespace = ""
		if slices.Contains(immortalNamespaces, name) {
			return nil, apierrors.NewForbidden(gr, name, errors.New("this namespace may not be deleted"))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, err := f.snapshotLocked(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.refuseFleet(key, true); err != nil {
		return nil, err
	}
	changes := removals(snap.Set, key)
	live, inStore := f.st.Get(kind, key.Namespace, name)
	if len(changes) == 0 {
		switch {
		case inStore && kind == store.KindNamespace:
			return live, nil // already terminating: its pods are going
		case inStore && kind == store.KindPod:
			// Already removed from the flash, still terminating: a second
			// delete may only shorten its grace (the API decides whether
			// it does; the manager never lengthens one).
			if grace != nil && !w.DryRun {
				f.apply.mgr.SetDeletionGrace(live.(*corev1.Pod).UID, *grace)
				f.waitGrace(ctx, namespace, name, *grace)
			}
			if now, ok := f.st.Get(kind, namespace, name); ok {
				return now, nil
			}
			return nil, nil
		}
		return nil, apierrors.NewNotFound(gr, name)
	}
	if w.DryRun {
		return live, nil
	}
	at, _ := snap.Set.Source(key)
	if kind == store.KindPod && grace != nil {
		for _, p := range snap.Set.Pods {
			if p.Namespace == namespace && p.Name == name {
				f.apply.mgr.SetDeletionGrace(p.UID, *grace)
			}
		}
	}
	next, err := f.dir.Apply(ctx, snap, changes)
	if next != nil {
		f.snap = next
	}
	if err != nil {
		return nil, f.writeError(key, "remove", err)
	}
	f.waitSettled(ctx)
	f.log.Info("manifest removed", "kind", kind, "namespace", key.Namespace, "name", name, "documents", len(changes), "user", w.User, "fieldManager", w.FieldManager)
	if inStore {
		if at.File != "" {
			f.rec.Eventf(live, corev1.EventTypeNormal, "ManifestRemoved", "Removed from manifest pods/%s, document %d, by %s", at.File, at.Index, writer(w))
		} else { // an implicit namespace: its objects' documents went
			f.rec.Eventf(live, corev1.EventTypeNormal, "ManifestRemoved", "Removed the %d manifest documents of objects in the namespace, by %s", len(changes), writer(w))
		}
	}
	if now, ok := f.st.Get(kind, key.Namespace, name); ok {
		return now, nil
	}
	return nil, nil
}

// refuseFleet refuses a write to an object of the running OTA generation's
// set: the bundle is its source of truth, and a write to the board's own
// manifests would only shadow it (the own object wins) until the next
// generation. A namespace is the fleet's when the fleet declares it and
// the board's own manifests do not; removing one is refused too while the
// fleet has objects in it, which a namespace's deletion cannot remove.
// The refusal is a 403 Forbidden, as an admission plugin's.
func (f *flash) refuseFleet(key manifest.ObjectKey, remove bool) error {
	gen, ok := f.apply.fleetManaged(key)
	if !ok && remove && key.Kind == store.KindNamespace {
		gen, ok = f.apply.fleetUses(key.Name)
	}
	if !ok {
		return nil
	}
	gr := groupResource(key.Kind)
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusForbidden,
		Reason:  metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource, Name: key.Name},
		Message: fmt.Sprintf("%s %q is managed by OTA generation %d: change it with a new bundle", gr.String(), key.Name, gen),
	}}
}

// waitGrace waits (bounded) until the store shows the terminating pod with
// a grace of at most seconds, or gone.
func (f *flash) waitGrace(ctx context.Context, namespace, name string, seconds int64) {
	ctx, cancel := context.WithTimeout(ctx, f.wait)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		o, ok := f.st.Get(store.KindPod, namespace, name)
		if !ok {
			return
		}
		if seconds < 0 {
			seconds = 1 // as the manager makes it
		}
		if g := o.(*corev1.Pod).DeletionGracePeriodSeconds; g != nil && *g <= seconds {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// immortalNamespaces may not be deleted (the API server's namespace
// lifecycle admission).
var immortalNamespaces = []string{"default", "kube-system", "kube-public"}

// removals are the documents to remove for key: the object's, and for a
// Namespace every object's in it, the Namespace's own last.
func removals(set *manifest.Set, key manifest.ObjectKey) []manifest.Change {
	var out []manifest.Change
	if key.Kind == store.KindNamespace {
		for _, p := range set.Pods {
			if p.Namespace == key.Name {
				out = append(out, manifest.Change{Key: manifest.ObjectKey{Kind: store.KindPod, Namespace: p.Namespace, Name: p.Name}})
			}
		}
		for _, c := range set.ConfigMaps {
			if c.Namespace == key.Name {
				out = append(out, manifest.Change{Key: manifest.ObjectKey{Kind: store.KindConfigMap, Namespace: c.Namespace, Name: c.Name}})
			}
		}
		for _, s := range set.Secrets {
			if s.Namespace == key.Name {
				out = append(out, manifest.Change{Key: manifest.ObjectKey{Kind: store.KindSecret, Namespace: s.Namespace, Name: s.Name}})
			}
		}
	}
	if _, ok := set.Source(key); ok {
		out = append(out, manifest.Change{Key: key})
	}
	return out
}

// writeError turns a write's failure into what the client sees: a file
// changed or broken is a Conflict naming it; anything else is a 500.
func (f *flash) writeError(key manifest.ObjectKey, op string, err error) error {
	var ce *manifest.ConflictError
	if errors.As(err, &ce) {
		return apierrors.NewConflict(groupResource(key.Kind), key.Name, ce)
	}
	if errors.Is(err, manifest.ErrNotDefined) {
		return apierrors.NewNotFound(groupResource(key.Kind), key.Name)
	}
	f.log.Error("manifest write failed", "op", op, "kind", key.Kind, "namespace", key.Namespace, "name", key.Name, "err", err)
	return apierrors.NewInternalError(fmt.Errorf("%s %s in the flash's manifests: %w", op, key, err))
}

// invalid is a Check failure as the API server reports it: Invalid (422)
// with the field errors, kubectl's `The Pod "x" is invalid: ...`.
func invalid(key manifest.ObjectKey, err error) error {
	var de *manifest.DocumentError
	if errors.As(err, &de) {
		if fes := de.FieldErrors(); len(fes) > 0 {
			return apierrors.NewInvalid(schema.GroupKind{Kind: key.Kind}, key.Name, fes)
		}
		return apierrors.NewBadRequest(de.Err.Error())
	}
	return apierrors.NewInternalError(err)
}

func groupResource(kind string) schema.GroupResource {
	switch kind {
	case store.KindPod:
		return schema.GroupResource{Resource: "pods"}
	case store.KindConfigMap:
		return schema.GroupResource{Resource: "configmaps"}
	case store.KindSecret:
		return schema.GroupResource{Resource: "secrets"}
	case store.KindNamespace:
		return schema.GroupResource{Resource: "namespaces"}
	}
	return schema.GroupResource{Resource: kind}
}

// writer names who wrote, for events.
func writer(w api.WriteInfo) string {
	who := "an unauthenticated client"
	if w.User != "" {
		who = fmt.Sprintf("user %q", w.User)
	}
	if w.FieldManager != "" {
		who += fmt.Sprintf(" (%s)", w.FieldManager)
	}
	return who
}
