package api

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podboot/podboot/agent/store"
)

// Name generation as the API server's names.SimpleNameGenerator.
const (
	generatedNameRandom    = 5
	maxGeneratedNameLength = 63 - generatedNameRandom
	// generateNameAttempts is how often a create retries a generated name
	// that is taken (the API server's RetryGenerateName retries 7 times).
	generateNameAttempts = 8
)

// create serves POST to a collection: the API server's createHandler and
// the registry's Store.Create.
func (s *server) create(ctx context.Context, wr *writeRequest) (runtime.Object, int, error) {
	body, err := readBody(wr.r)
	if err != nil {
		return nil, 0, err
	}
	opts := &metav1.CreateOptions{}
	if err := s.decodeParameters(wr.r, opts); err != nil {
		return nil, 0, err
	}
	if errs := metav1validation.ValidateCreateOptions(opts); len(errs) > 0 {
		return nil, 0, invalidOptions("CreateOptions", errs)
	}
	obj, err := s.decodeObject(wr, body, fieldValidation(opts.FieldValidation))
	if err != nil {
		return nil, 0, err
	}
	m := metaOf(obj)
	wipeSystemFields(m)
	if err := ensureNamespace(wr.req, m); err != nil {
		return nil, 0, err
	}
	manager := managerOrUserAgent(opts.FieldManager, wr.r.UserAgent())
	info := writeInfo(wr.r, manager, opts.DryRun)

	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	if err := s.opts.Flash.Refresh(ctx); err != nil {
		return nil, 0, err
	}
	obj = s.updateFields(nil, obj, manager)
	out, err := s.createLocked(ctx, wr, obj, info)
	if err != nil {
		return nil, 0, err
	}
	return out, http.StatusCreated, nil
}

// createLocked stores a new object (create, and server-side apply of an
// object that does not exist): the namespace's lifecycle, a generated
// name, the checks the registry makes, then Flash.Save.
func (s *server) createLocked(ctx context.Context, wr *writeRequest, obj runtime.Object, info WriteInfo) (runtime.Object, error) {
	res := wr.req.res
	m := metaOf(obj)
	if err := s.admitCreate(wr.req, m); err != nil {
		return nil, err
	}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return nil, apierrors.NewInvalid(groupKind(res), "", field.ErrorList{
			field.Required(field.NewPath("metadata", "name"), "name or generateName is required"),
		})
	}
	if m.GetResourceVersion() != "" {
		// The storage's refusal, which the API server relays as a bare
		// 500 (not an InternalError).
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Reason: metav1.StatusReasonUnknown, Message: "resourceVersion should not be set on objects to be created",
		}}
	}
	prepareForCreate(obj)
	generate := m.GetName() == ""
	for attempt := 1; ; attempt++ {
		if generate {
			base := m.GetGenerateName()
			if len(base) > maxGeneratedNameLength {
				base = base[:maxGeneratedNameLength]
			}
			m.SetName(base + utilrand.String(generatedNameRandom))
		}
		live, exists := s.store.Get(res.kind, m.GetNamespace(), m.GetName())
		if !exists {
			break
		}
		if generate && attempt < generateNameAttempts {
			continue
		}
		err := apierrors.NewAlreadyExists(groupResource(res), m.GetName())
		if generate {
			err = apierrors.NewGenerateNameConflict(groupResource(res), m.GetName(), 1)
		}
		if metaOf(live).GetDeletionTimestamp() != nil {
			err.ErrStatus.Message = "object is being deleted: " + err.ErrStatus.Message
		}
		return nil, err
	}
	return s.opts.Flash.Save(ctx, obj, info)
}

// admitCreate is the API server's NamespaceLifecycle admission for a
// create: the namespace must exist and not be terminating.
func (s *server) admitCreate(req resourceRequest, m metav1.Object) error {
	if !req.res.namespaced {
		return nil
	}
	ns := m.GetNamespace()
	obj, ok := s.store.Get(store.KindNamespace, "", ns)
	if !ok {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), ns)
	}
	if n, _ := obj.(*corev1.Namespace); n != nil && n.Status.Phase == corev1.NamespaceTerminating {
		name := m.GetName()
		if name == "" {
			name = m.GetGenerateName()
		}
		err := apierrors.NewForbidden(groupResource(req.res), name,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    corev1.NamespaceTerminatingCause,
			Message: fmt.Sprintf("namespace %s is being terminated", ns),
			Field:   "metadata.namespace",
		})
		return err
	}
	return nil
}

// wipeSystemFields clears what the API server sets itself on a create
// (rest.WipeObjectMetaSystemFields).
func wipeSystemFields(m metav1.Object) {
	m.SetCreationTimestamp(metav1.Time{})
	m.SetUID("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
}

// ensureNamespace is rest.EnsureObjectNamespaceMatchesRequestNamespace: an
// object's namespace defaults to the request's, and must not differ.
func ensureNamespace(req resourceRequest, m metav1.Object) error {
	want := ""
	if req.res.namespaced {
		want = req.namespace
	}
	switch got := m.GetNamespace(); {
	case got == want:
	case got == "":
		m.SetNamespace(want)
	case want == "":
		m.SetNamespace("")
	default:
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return nil
}

// prepareForCreate clears what the strategies reset on a create: status
// is the agent's.
func prepareForCreate(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Status = corev1.PodStatus{Phase: corev1.PodPending}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	}
}
