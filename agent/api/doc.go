// Package api serves the subset of the Kubernetes API that a stock kubectl
// uses to read a board: discovery, list/get/watch of pods, namespaces, the
// node and its Lease (coordination.k8s.io/v1), events, configmaps and
// secrets (JSON and server-side Table),
// label and field selectors, pod logs, kubelet's read-only /pods endpoint
// and the health probes.
//
// It is a lean net/http handler over agent/store built from apimachinery's
// types, selectors and errors, not k8s.io/apiserver's generic server; see
// docs/api.md for why and what it costs. The Table printers follow
// Kubernetes' own (pkg/printers/internalversion) column for column.
//
// Writes to resources are not served yet: POST, PUT, PATCH and DELETE
// answer 405. POST /podboot/v1/poweroff and /podboot/v1/reboot hand a
// power request to the board's PID 1 (see Power).
//
// The handler itself does no authentication: Secure wraps it, for the
// network listeners, with kube-apiserver's bearer-token and client
// certificate authentication and an authorizer for two kinds of
// credential, admin and read-only (GroupAdmin, GroupReadOnly), whose
// refusals are kube-apiserver's 401 and 403; UserFrom names the user to
// the handlers. CSRHandler signs client certificates for admins.
package api
