package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// writeStatus answers with a metav1.Status, which kubectl prints as
// "Error from server (Reason): message".
func writeStatus(w http.ResponseWriter, err error) {
	status := toStatus(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(status.Code))
	_ = json.NewEncoder(w).Encode(status) // the client went away
}

func toStatus(err error) metav1.Status {
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		se = apierrors.NewInternalError(err)
	}
	status := se.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if status.Code == 0 {
		status.Code = http.StatusInternalServerError
	}
	return status
}

func notFound(res *resource, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: res.group, Resource: res.name}, name)
}

// pathNotFound is the API server's answer for a path it does not serve.
func pathNotFound() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotFound,
		Reason:  metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type: metav1.CauseTypeUnexpectedServerResponse, Message: "404 page not found",
		}}},
	}}
}

// writesNotServed answers a write where the agent serves reads only: an
// agent without a flash to write to (Options.Flash nil), and kubelet's
// read-only /pods.
func writesNotServed(method, what string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusMethodNotAllowed,
		Reason: metav1.StatusReasonMethodNotAllowed,
		Message: fmt.Sprintf("%s on %s is not supported: this agent serves reads only (it has no flash to write to)",
			method, what),
		Details: &metav1.StatusDetails{Kind: what},
	}}
}

func badRequest(format string, args ...any) error {
	return apierrors.NewBadRequest(fmt.Sprintf(format, args...))
}
