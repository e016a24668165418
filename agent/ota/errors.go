package ota

// Reasons of the refusals the Target finds (the bundle's own are
// bundle.Reason*).
const (
	// ReasonCollision: the bundle defines an object the board's own
	// manifests define too.
	ReasonCollision = "Collision"
	// ReasonInvalidManifest: a manifest of the bundle does not decode or
	// validate; a fleet's set runs whole or not at all.
	ReasonInvalidManifest = "InvalidManifest"
)

// RefusedError is a bundle the board did not take, with the reason
// (bundle.Reason* or ReasonCollision) an operator filters on.
type RefusedError struct {
	Reason, Message string
	Err             error
}

func (e *RefusedError) Error() string { return e.Message }
func (e *RefusedError) Unwrap() error { return e.Err }

// RefusalReason is the API's view of a refusal (422 with this cause).
func (e *RefusedError) RefusalReason() string { return e.Reason }

// ConflictError is a request the current state does not allow: a bundle
// while a trial runs, a rollback with nothing to go back to.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// Conflict marks it for the API (409).
func (e *ConflictError) Conflict() bool { return true }

// CollisionError is a generation that defines what the board's own
// manifests define: the Target's Check returns it.
type CollisionError struct{ Message string }

func (e *CollisionError) Error() string { return e.Message }

// InvalidManifestError is a generation whose manifests have errors: the
// Target's Check returns it.
type InvalidManifestError struct{ Message string }

func (e *InvalidManifestError) Error() string { return e.Message }
