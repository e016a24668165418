package api

import (
	"context"
	"errors"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// optimisticLockErrorMsg is the API server's conflict message for an
// update against a resourceVersion that is no longer current.
const optimisticLockErrorMsg = "the object has been modified; please apply your changes to the latest version and try again"

// replace serves PUT of a named object: the API server's UpdateResource
// and the registry's Store.Update. None of the served kinds may be created
// by an update (AllowCreateOnUpdate is false for all four), and all four
// allow an unconditional update (a body without resourceVersion).
func (s *server) replace(ctx context.Context, wr *writeRequest) (runtime.Object, int, error) {
	body, err := readBody(wr.r)
	if err != nil {
		return nil, 0, err
	}
	opts := &metav1.UpdateOptions{}
	if err := s.decodeParameters(wr.r, opts); err != nil {
		return nil, 0, err
	}
	if errs := metav1validation.ValidateUpdateOptions(opts); len(errs) > 0 {
		return nil, 0, invalidOptions("UpdateOptions", errs)
	}
	obj, err := s.decodeObject(wr, body, fieldValidation(opts.FieldValidation))
	if err != nil {
		return nil, 0, err
	}
	m := metaOf(obj)
	if err := ensureNamespace(wr.req, m); err != nil {
		return nil, 0, err
	}
	if err := checkName(wr.req, m); err != nil {
		return nil, 0, err
	}
	manager := managerOrUserAgent(opts.FieldManager, wr.r.UserAgent())
	info := writeInfo(wr.r, manager, opts.DryRun)

	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	if err := s.opts.Flash.Refresh(ctx); err != nil {
		return nil, 0, err
	}
	live, ok := s.store.Get(wr.req.res.kind, wr.req.namespace, wr.req.name)
	if !ok {
		return nil, 0, notFound(wr.req.res, wr.req.name)
	}
	obj = s.updateFields(live, obj, manager)
	out, err := s.updateLocked(ctx, wr, live, obj, info)
	if err != nil {
		return nil, 0, err
	}
	return out, http.StatusOK, nil
}

// checkName is the API server's check that the object is the one the URL
// names.
func checkName(req resourceRequest, m metav1.Object) error {
	if m.GetName() != req.name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), req.name)
	}
	if req.namespace != "" && m.GetNamespace() != "" && m.GetNamespace() != req.namespace {
		return badRequest("the namespace of the object (%s) does not match the namespace on the request (%s)", m.GetNamespace(), req.namespace)
	}
	return nil
}

// updateLocked stores obj over live, as the registry's Store.Update after
// the new object is known (from a PUT body or a patch): the
// resourceVersion precondition, rest.BeforeUpdate (what a client may not
// change is kept, then the kind's update validation), then Flash.Save.
// The caller has run the field manager.
func (s *server) updateLocked(ctx context.Context, wr *writeRequest, live, obj runtime.Object, info WriteInfo) (runtime.Object, error) {
	res := wr.req.res
	m, lm := metaOf(obj), metaOf(live)
	if rv := m.GetResourceVersion(); rv != "" && rv != lm.GetResourceVersion() {
		return nil, apierrors.NewConflict(groupResource(res), wr.req.name, errors.New(optimisticLockErrorMsg))
	}
	m.SetResourceVersion(lm.GetResourceVersion())

	// rest.BeforeUpdate.
	m.SetGeneration(lm.GetGeneration())
	prepareForUpdate(obj, live)
	if m.GetUID() == "" {
		m.SetUID(lm.GetUID())
	}
	if ts := lm.GetCreationTimestamp(); !ts.IsZero() {
		m.SetCreationTimestamp(ts)
	}
	if lm.GetDeletionTimestamp() != nil {
		m.SetDeletionTimestamp(lm.GetDeletionTimestamp())
	}
	if lm.GetDeletionGracePeriodSeconds() != nil && m.GetDeletionGracePeriodSeconds() == nil {
		m.SetDeletionGracePeriodSeconds(lm.GetDeletionGracePeriodSeconds())
	}
	errs := validateMetaUpdate(m, lm)
	if len(errs) == 0 {
		podErrs, err := s.validatePodUpdate(ctx, obj, live, info)
		if err != nil {
			return nil, err
		}
		errs = podErrs
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(groupKind(res), m.GetName(), errs)
	}
	return s.opts.Flash.Save(ctx, obj, info)
}

// prepareForUpdate keeps what the strategies do not let a client change:
// status is the agent's, and so are a namespace's spec.finalizers.
func prepareForUpdate(obj, live runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		if l, ok := live.(*corev1.Pod); ok {
			o.Status = *l.Status.DeepCopy()
		}
	case *corev1.Namespace:
		if l, ok := live.(*corev1.Namespace); ok {
			o.Spec.Finalizers = append([]corev1.FinalizerName(nil), l.Spec.Finalizers...)
			o.Status = *l.Status.DeepCopy()
		}
	}
}

// validateMetaUpdate is ValidateObjectMetaUpdate's part that a PUT or
// patch can break here: name, namespace and uid are immutable.
func validateMetaUpdate(m, old metav1.Object) field.ErrorList {
	p := field.NewPath("metadata")
	var errs field.ErrorList
	immutable := func(name, got, was string) {
		if got != was {
			errs = append(errs, field.Invalid(p.Child(name), got, "field is immutable"))
		}
	}
	immutable("name", m.GetName(), old.GetName())
	immutable("namespace", m.GetNamespace(), old.GetNamespace())
	immutable("uid", string(m.GetUID()), string(old.GetUID()))
	return errs
}
