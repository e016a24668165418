package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

// fakeFlash is an in-memory Flash: Save decodes, defaults and validates an
// object as a manifest document would be (manifest.Check), then puts it
// into the store; Remove deletes from the store (a namespace with
// everything in it).
type fakeFlash struct {
	st   *store.Store
	node string
	now  func() time.Time
	// terminate keeps a pod deleted with a grace period above zero in the
	// store, terminating, as the agent does while its containers stop.
	terminate bool

	mu         sync.Mutex
	refreshErr error
	saves      []WriteInfo
	removes    []string // kind namespace/name grace
}

func newFakeFlash(st *store.Store) *fakeFlash {
	return &fakeFlash{st: st, node: "board-1", now: func() time.Time { return t0 }}
}

func (f *fakeFlash) Refresh(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshErr
}

func (f *fakeFlash) Save(ctx context.Context, obj runtime.Object, w WriteInfo) (runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves = append(f.saves, w)
	checked, err := manifest.Check(obj.DeepCopyObject(), manifest.Options{NodeName: f.node})
	if err != nil {
		var de *manifest.DocumentError
		if errors.As(err, &de) && len(de.FieldErrors()) > 0 {
			gvk := obj.GetObjectKind().GroupVersionKind()
			return nil, apierrors.NewInvalid(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, metaOf(obj).GetName(), de.FieldErrors())
		}
		return nil, apierrors.NewBadRequest(err.Error())
	}
	m := metaOf(checked)
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	live, exists := f.st.Get(kind, m.GetNamespace(), m.GetName())
	// The store's fields and the agent's status stay.
	switch o := checked.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending}
		if exists {
			lp := live.(*corev1.Pod)
			o.Status = lp.Status
			o.DeletionTimestamp, o.DeletionGracePeriodSeconds = lp.DeletionTimestamp, lp.DeletionGracePeriodSeconds
		}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		if exists {
			o.Status = live.(*corev1.Namespace).Status
		}
	}
	m.SetManagedFields(metaOf(obj).GetManagedFields())
	if exists {
		m.SetCreationTimestamp(metaOf(live).GetCreationTimestamp())
		m.SetResourceVersion(metaOf(live).GetResourceVersion())
	}
	if w.DryRun {
		return checked, nil
	}
	if err := f.st.Put(checked); err != nil {
		return nil, err
	}
	out, _ := f.st.Get(kind, m.GetNamespace(), m.GetName())
	return out, nil
}

func (f *fakeFlash) Remove(ctx context.Context, kind, namespace, name string, grace *int64, w WriteInfo) (runtime.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := "nil"
	if grace != nil {
		g = fmt.Sprint(*grace)
	}
	f.removes = append(f.removes, fmt.Sprintf("%s %s/%s %s", kind, namespace, name, g))
	live, ok := f.st.Get(kind, namespace, name)
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: kind}, name)
	}
	if w.DryRun {
		return live, nil
	}
	if pod, isPod := live.(*corev1.Pod); isPod && f.terminate && (grace == nil || *grace > 0) {
		period := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if grace != nil {
			period = *grace
		} else if pod.Spec.TerminationGracePeriodSeconds != nil {
			period = *pod.Spec.TerminationGracePeriodSeconds
		}
		ts := metav1.NewTime(f.now().Add(time.Duration(period) * time.Second))
		pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = &ts, &period
		if err := f.st.Put(pod); err != nil {
			return nil, err
		}
		out, _ := f.st.Get(kind, namespace, name)
		return out, nil
	}
	if kind == store.KindNamespace {
		for _, k := range []string{store.KindPod, store.KindConfigMap, store.KindSecret} {
			objs, _ := f.st.List(k, name)
			for _, o := range objs {
				if err := f.st.Delete(k, name, metaOf(o).GetName()); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := f.st.Delete(kind, namespace, name); err != nil {
		return nil, err
	}
	return nil, nil
}

// removed returns the removes so far ("kind namespace/name grace").
func (f *fakeFlash) removed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.removes...)
}

// saved returns the WriteInfo of the saves so far.
func (f *fakeFlash) saved() []WriteInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]WriteInfo(nil), f.saves...)
}
