package api

import (
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Power turns the board off or restarts it. Both return once the request
// is handed on (to PID 1); the board goes down afterwards, stopping the
// pods gracefully first.
type Power interface {
	PowerOff() error
	Reboot() error
}

// Paths of the power endpoints. They are podboot's own, outside the
// Kubernetes API groups, so no Kubernetes client mistakes them for a
// resource.
const (
	PowerOffPath = "/podboot/v1/poweroff"
	RebootPath   = "/podboot/v1/reboot"
)

// servePower answers POST /podboot/v1/{poweroff,reboot}: 202 Accepted with
// a Success Status once PID 1 has been told, 501 when this agent has no
// power control, 405 for any other method.
func (s *server) servePower(w http.ResponseWriter, r *http.Request, path string) {
	action, message := "poweroff", "powering off"
	if path == RebootPath {
		action, message = "reboot", "rebooting"
	}
	if r.Method != http.MethodPost {
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusMethodNotAllowed,
			Reason:  metav1.StatusReasonMethodNotAllowed,
			Message: fmt.Sprintf("%s on %s is not supported: use POST", r.Method, path),
		}})
		return
	}
	if s.opts.Power == nil {
		reason := s.opts.PowerDisabled
		if reason == "" {
			reason = "this agent has no power control"
		}
		writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusNotImplemented,
			Message: fmt.Sprintf("%s is not available: %s", action, reason),
		}})
		return
	}
	do := s.opts.Power.PowerOff
	if path == RebootPath {
		do = s.opts.Power.Reboot
	}
	if err := do(); err != nil {
		s.log.Error("api: "+action, "err", err)
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("%s: %w", action, err)))
		return
	}
	s.log.Info("api: "+message, "remote", r.RemoteAddr)
	// A Success Status, as the API server sends for an accepted delete.
	writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusSuccess,
		Code:    http.StatusAccepted,
		Message: message,
	}})
}
