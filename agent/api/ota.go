package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Paths of the OTA endpoints (docs/ota.md). Like the power endpoints they
// are podboot's own, outside the Kubernetes API groups.
const (
	// OTAPath answers GET with the OTAStatus; read-only users may read it.
	OTAPath = "/podboot/v1/ota"
	// OTABundlesPath takes POST of a bundle (an OCI image layout tar, as
	// podctl ota build writes it); admins only.
	OTABundlesPath = "/podboot/v1/ota/bundles"
	// OTARollbackPath takes POST: back to the previous committed
	// generation; admins only.
	OTARollbackPath = "/podboot/v1/ota/rollback"
)

// MaxOTABundleSize is the largest bundle POST OTABundlesPath accepts: its
// image archives are the bulk, and a board's flash holds no more anyway.
const MaxOTABundleSize = 2 << 30

// OTAStatus is what the OTA controller reports (agent/ota.Status): the
// generation that runs, the one on trial, and those that failed.
type OTAStatus struct {
	Generation uint64   `json:"generation"`
	State      string   `json:"state"` // committed | trying | rolled-back
	Trying     uint64   `json:"trying,omitempty"`
	Failed     []uint64 `json:"failed"` // never null
	Reason     string   `json:"reason,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	Source     string   `json:"source,omitempty"`
}

// OTA is the controller behind the OTA endpoints (agent/ota.Controller,
// adapted by the agent's wiring).
type OTA interface {
	Status() OTAStatus
	// Push verifies the bundle read from r and begins its trial; it
	// returns once the trial began. A refused bundle is an OTARefusal.
	Push(ctx context.Context, r io.Reader) (OTAStatus, error)
	// Rollback goes back to the previous committed generation; an
	// OTAConflict when there is none.
	Rollback(ctx context.Context) (OTAStatus, error)
}

// OTARefusal is a bundle the board refuses (agent/ota/bundle.Refusal):
// answered 422 with the reason as the Status's cause type.
type OTARefusal interface {
	error
	RefusalReason() string
}

// OTAConflict is a request the OTA state does not allow now (a rollback
// with no previous generation, a push while a trial runs): answered 409.
type OTAConflict interface {
	error
	Conflict() bool
}

// NewOTAConflict marks err as an OTAConflict, for the wiring to wrap
// errors such as trial.ErrNoPrevious with; errors.Is still finds err.
func NewOTAConflict(err error) error { return otaConflict{err} }

type otaConflict struct{ error }

func (otaConflict) Conflict() bool  { return true }
func (c otaConflict) Unwrap() error { return c.error }

// otaNotConfigured is the 501's message when the agent has no OTA.
const otaNotConfigured = "OTA is not configured: device.yaml has no ota.keys"

// readOnlyPodbootPath reports whether GroupReadOnly may GET path under
// /podboot/: the OTA status only (the others act on the board).
func readOnlyPodbootPath(path string) bool {
	return strings.TrimSuffix(path, "/") == OTAPath
}

// serveOTA answers the OTA endpoints; path has no trailing slash.
func (s *server) serveOTA(w http.ResponseWriter, r *http.Request, path string) {
	method := http.MethodPost
	if path == OTAPath {
		method = http.MethodGet
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusMethodNotAllowed,
			Reason:  metav1.StatusReasonMethodNotAllowed,
			Message: fmt.Sprintf("%s on %s is not supported: use %s", r.Method, path, method),
		}})
		return
	}
	if s.opts.OTA == nil {
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusNotImplemented,
			Message: otaNotConfigured,
		}})
		return
	}
	switch path {
	case OTAPath:
		writeOTAStatus(w, s.opts.OTA.Status())
	case OTABundlesPath:
		s.serveOTAPush(w, r, MaxOTABundleSize)
	default:
		st, err := s.opts.OTA.Rollback(r.Context())
		if err != nil {
			s.writeOTAError(w, r, "rollback", err, 0)
			return
		}
		s.log.Info("api: OTA rollback", "remote", r.RemoteAddr, "generation", st.Generation)
		writeOTAStatus(w, st)
	}
}

// serveOTAPush hands the request's body, at most limit bytes, to the
// controller.
func (s *server) serveOTAPush(w http.ResponseWriter, r *http.Request, limit int64) {
	if r.ContentLength > limit {
		// Refused before a byte of it is read.
		writeStatus(w, bundleTooLarge(limit))
		return
	}
	st, err := s.opts.OTA.Push(r.Context(), http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		s.writeOTAError(w, r, "push bundle", err, limit)
		return
	}
	s.log.Info("api: OTA bundle accepted", "remote", r.RemoteAddr, "trying", st.Trying)
	writeOTAStatus(w, st)
}

func bundleTooLarge(limit int64) error {
	return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit))
}

// writeOTAError answers a failed push or rollback: 413 for a body over
// the limit, 422 for a refused bundle (the reason as the cause's type, as
// kubectl shows a field's), 409 for a conflict, 500 for anything else.
func (s *server) writeOTAError(w http.ResponseWriter, r *http.Request, op string, err error, limit int64) {
	var (
		tooLarge *http.MaxBytesError
		refusal  OTARefusal
		conflict OTAConflict
	)
	switch {
	case errors.As(err, &tooLarge):
		writeStatus(w, bundleTooLarge(limit))
	case errors.As(err, &refusal):
		s.log.Warn("api: OTA "+op+" refused", "remote", r.RemoteAddr, "reason", refusal.RefusalReason(), "err", err)
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusUnprocessableEntity,
			Reason:  metav1.StatusReasonInvalid,
			Message: refusal.Error(),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type:    metav1.CauseType(refusal.RefusalReason()),
				Message: refusal.Error(),
			}}},
		}})
	case errors.As(err, &conflict) && conflict.Conflict():
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusConflict,
			Reason:  metav1.StatusReasonConflict,
			Message: err.Error(),
		}})
	default:
		s.log.Error("api: OTA "+op, "remote", r.RemoteAddr, "err", err)
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("OTA %s: %w", op, err)))
	}
}

// writeOTAStatus answers 200 with st; Failed is [] rather than null, so a
// client reads a list whatever the controller left there.
func writeOTAStatus(w http.ResponseWriter, st OTAStatus) {
	if st.Failed == nil {
		st.Failed = []uint64{}
	}
	writeJSON(w, st)
}
