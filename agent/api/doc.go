// Package api serves the subset of the Kubernetes API that a stock kubectl
// uses to read a board: discovery, list/get/watch of pods, namespaces, the
// node, events, configmaps and secrets (JSON and server-side Table),
// label and field selectors, pod logs, kubelet's read-only /pods endpoint
// and the health probes.
//
// It is a lean net/http handler over agent/store built from apimachinery's
// types, selectors and errors, not k8s.io/apiserver's generic server; see
// docs/api.md for why and what it costs. The Table printers follow
// Kubernetes' own (pkg/printers/internalversion) column for column.
//
// Writes are not served yet: POST, PUT, PATCH and DELETE answer 405.
package api
