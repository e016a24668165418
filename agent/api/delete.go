package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/agent/store"
)

// immortal reports whether a namespace may never be deleted
// (kube-apiserver's NamespaceLifecycle admission).
func immortal(namespace string) bool {
	switch namespace {
	case metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease:
		return true
	}
	return false
}

// deleteOne serves DELETE of a named object: the API server's
// DeleteResource and the registry's Store.Delete (the namespace
// registry's own Delete for namespaces).
func (s *server) deleteOne(ctx context.Context, wr *writeRequest) (runtime.Object, int, error) {
	opts, err := s.deleteOptions(wr.r)
	if err != nil {
		return nil, 0, err
	}
	info := writeInfo(wr.r, "", opts.DryRun)

	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	if err := s.opts.Flash.Refresh(ctx); err != nil {
		return nil, 0, err
	}
	res := wr.req.res
	live, ok := s.store.Get(res.kind, wr.req.namespace, wr.req.name)
	if !ok {
		return nil, 0, notFound(res, wr.req.name)
	}
	out, err := s.deleteLocked(ctx, res, live, opts, info)
	if err != nil {
		return nil, 0, err
	}
	return out, http.StatusOK, nil
}

// deleteCollection serves DELETE of a collection (deletecollection): each
// object the selectors match is deleted as by name, and the answer is the
// list of them as they were.
func (s *server) deleteCollection(ctx context.Context, wr *writeRequest) (runtime.Object, int, error) {
	res := wr.req.res
	q, err := parseListQuery(res, wr.r.URL.Query())
	if err != nil {
		return nil, 0, err
	}
	opts, err := s.deleteOptions(wr.r)
	if err != nil {
		return nil, 0, err
	}
	info := writeInfo(wr.r, "", opts.DryRun)

	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	if err := s.opts.Flash.Refresh(ctx); err != nil {
		return nil, 0, err
	}
	objs, rv := s.store.List(res.kind, wr.req.namespace)
	items := []runtime.Object{}
	for _, o := range objs {
		if !q.matches(res, o) {
			continue
		}
		items = append(items, o)
		if _, err := s.deleteLocked(ctx, res, o, opts.DeepCopy(), info); err != nil && !apierrors.IsNotFound(err) {
			return nil, 0, err
		}
	}
	list, err := typedList(res, items, rv)
	if err != nil {
		return nil, 0, err
	}
	return list, http.StatusOK, nil
}

// typedList is the v1 <Kind>List of items.
func typedList(res *resource, items []runtime.Object, rv string) (runtime.Object, error) {
	var list runtime.Object
	switch res.kind {
	case store.KindPod:
		list = &corev1.PodList{}
	case store.KindNamespace:
		list = &corev1.NamespaceList{}
	case store.KindConfigMap:
		list = &corev1.ConfigMapList{}
	case store.KindSecret:
		list = &corev1.SecretList{}
	default:
		return nil, fmt.Errorf("list %s: not a writable kind", res.kind)
	}
	if err := meta.SetList(list, items); err != nil {
		return nil, fmt.Errorf("list %s: %w", res.kind, err)
	}
	list.GetObjectKind().SetGroupVersionKind(store.GroupVersionKind(res.kind + "List"))
	if la, err := meta.ListAccessor(list); err == nil {
		la.SetResourceVersion(rv)
	}
	return list, nil
}

// deleteLocked deletes live: the preconditions, the grace period, then
// Flash.Remove. Pods and namespaces answer with the object (terminating,
// or as it last was), the others with a Success Status, as the API
// server's registries do.
func (s *server) deleteLocked(ctx context.Context, res *resource, live runtime.Object, opts *metav1.DeleteOptions, info WriteInfo) (runtime.Object, error) {
	m := metaOf(live)
	var grace *int64
	switch o := live.(type) {
	case *corev1.Namespace:
		if immortal(o.Name) {
			return nil, apierrors.NewForbidden(groupResource(res), o.Name, errors.New("this namespace may not be deleted"))
		}
		if err := namespacePreconditions(o, opts.Preconditions); err != nil {
			return nil, err
		}
		if o.DeletionTimestamp != nil {
			return live, nil // termination is under way
		}
	case *corev1.Pod:
		if err := preconditions(live, opts.Preconditions); err != nil {
			return nil, err
		}
		var pending bool
		if grace, pending = podGrace(o, opts.GracePeriodSeconds); pending {
			return live, nil
		}
	default:
		if err := preconditions(live, opts.Preconditions); err != nil {
			return nil, err
		}
	}
	out, err := s.opts.Flash.Remove(ctx, res.kind, m.GetNamespace(), m.GetName(), grace, info)
	if err != nil {
		return nil, err
	}
	switch res.kind {
	case store.KindPod, store.KindNamespace:
		if out == nil {
			out = live
		}
		return out, nil
	}
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Details: &metav1.StatusDetails{
			Name: m.GetName(), Group: res.group, Kind: res.name, UID: m.GetUID(),
		},
	}, nil
}

// podGrace is the grace period a pod's deletion asks the flash for, as
// rest.BeforeDelete and the pod strategy's CheckGracefulDelete decide it:
// nil is the pod's own terminationGracePeriodSeconds; a pod that has
// finished goes at once; a pod already terminating may only have its
// grace shortened, else the deletion is pending and changes nothing.
func podGrace(pod *corev1.Pod, requested *int64) (grace *int64, pending bool) {
	if requested != nil {
		g := *requested
		if g < 0 {
			g = 1
		}
		requested = &g
	}
	if pod.DeletionTimestamp != nil {
		current := pod.DeletionGracePeriodSeconds
		if current == nil || *current == 0 {
			zero := int64(0)
			return &zero, false
		}
		if requested == nil || *requested >= *current {
			return nil, true
		}
		return requested, false
	}
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded || pod.Spec.NodeName == "" {
		zero := int64(0)
		return &zero, false
	}
	return requested, false
}

// preconditions is rest.BeforeDelete's check (its resource is the kind,
// as the API server's).
func preconditions(live runtime.Object, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	m := metaOf(live)
	gr := schema.GroupResource{Group: live.GetObjectKind().GroupVersionKind().Group, Resource: live.GetObjectKind().GroupVersionKind().Kind}
	if p.UID != nil && *p.UID != m.GetUID() {
		return apierrors.NewConflict(gr, m.GetName(), fmt.Errorf(
			"the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *p.UID, m.GetUID()))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return apierrors.NewConflict(gr, m.GetName(), fmt.Errorf(
			"the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", *p.ResourceVersion, m.GetResourceVersion()))
	}
	return nil
}

// namespacePreconditions is the namespace registry's own check.
func namespacePreconditions(ns *corev1.Namespace, p *metav1.Preconditions) error {
	if p == nil {
		return nil
	}
	gr := corev1.Resource("namespaces")
	if p.UID != nil && *p.UID != ns.UID {
		return apierrors.NewConflict(gr, ns.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, ns.UID))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != ns.ResourceVersion {
		return apierrors.NewConflict(gr, ns.Name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, ns.ResourceVersion))
	}
	return nil
}

// deleteOptions reads a delete's options as the API server does: from the
// body when there is one (JSON or YAML, meta.k8s.io/v1 or a group's v1
// DeleteOptions), else from the query.
func (s *server) deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	opts := &metav1.DeleteOptions{}
	if len(body) > 0 {
		var unmarshal func([]byte, any) error
		switch mt := mediaType(r.Header.Get("Content-Type")); {
		case r.Header.Get("Content-Type") == "" || mt == runtime.ContentTypeJSON:
			unmarshal = json.Unmarshal
		case mt == runtime.ContentTypeYAML:
			unmarshal = func(b []byte, v any) error { return yaml.Unmarshal(b, v) }
		default:
			return nil, unsupportedMediaType(bodyMediaTypes)
		}
		if err := unmarshal(body, opts); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if k := opts.Kind; k != "" && k != "DeleteOptions" {
			return nil, badRequest("no kind %q is registered for version %q", k, opts.APIVersion)
		}
	} else if err := s.decodeParameters(r, opts); err != nil {
		return nil, err
	}
	if errs := metav1validation.ValidateDeleteOptions(opts); len(errs) > 0 {
		return nil, invalidOptions("DeleteOptions", errs)
	}
	return opts, nil
}
