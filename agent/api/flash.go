package api

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
)

// Flash is where the API's writes go: the manifests on the board's flash,
// the one source of truth (docs/api.md, "Writes"). The API serializes its
// writes; a write is Refresh, the precondition checks against the store,
// then Save or Remove. Errors are *apierrors.StatusError where the client
// should see them (Conflict, NotFound, Invalid); anything else is a 500.
type Flash interface {
	// Refresh brings the store up to date with the manifest files: an edit
	// a person made to a file since the last refresh is applied (and the
	// objects' resourceVersions move on) before Refresh returns, so the
	// write that follows is checked against it.
	Refresh(ctx context.Context) error
	// Save writes obj, a *corev1.Pod, ConfigMap, Secret or Namespace (its
	// status and the store's fields, resourceVersion, uid,
	// creationTimestamp, are not written), as its manifest document: the
	// document that defines the object is replaced in its file, keeping
	// the file's other documents byte for byte, or a new file is written
	// for a new object. It applies the change and returns the object as
	// the store then holds it. An object that does not validate (the same
	// decoding, defaults and validation as a file's document) is an
	// Invalid (422) error naming the fields; a file changed since Refresh
	// is a Conflict. Each write leaves a Normal event on the object
	// (reason ManifestSaved or ManifestRemoved) naming the file, the
	// document and who wrote it; a Secret's values never reach an event
	// or a log.
	Save(ctx context.Context, obj runtime.Object, w WriteInfo) (runtime.Object, error)
	// Remove deletes the document that defines kind namespace/name (for a
	// Namespace, also every document of an object in it) and applies the
	// change: a pod is then terminating, with grace (nil = its own
	// terminationGracePeriodSeconds; 0 = killed at once) as its grace
	// period. It returns the object as the store then holds it, or nil
	// when the store no longer holds it.
	Remove(ctx context.Context, kind, namespace, name string, grace *int64, w WriteInfo) (runtime.Object, error)
}

// WriteInfo says who writes, for the events and logs a write leaves.
type WriteInfo struct {
	// User is the authenticated user ("" on an unauthenticated listener).
	User string
	// FieldManager is the client's fieldManager ("kubectl-create", ...).
	FieldManager string
	// DryRun (dryRun=All) validates and returns what would be stored,
	// writing nothing and changing nothing.
	DryRun bool
}
