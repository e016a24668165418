package api

import (
	"errors"

	"k8s.io/apimachinery/pkg/runtime"
)

// fieldManager keeps metadata.managedFields as the API server does and
// applies server-side apply patches (apimachinery's managedfields).
// Placeholder until server-side apply lands (issue 12): Update passes the
// object through, Apply refuses.
type fieldManager struct{}

func newFieldManager() (*fieldManager, error) { return &fieldManager{}, nil }

// Update records manager's ownership of what changed from live (nil on
// create) to obj, an Update operation (create, replace, patch), and
// returns obj with its managedFields.
func (f *fieldManager) Update(live, obj runtime.Object, manager string) (runtime.Object, error) {
	return obj, nil
}

// Apply applies a server-side apply patch (application/apply-patch+yaml)
// by manager to live (nil when the object does not exist yet); force
// takes over conflicting fields. A conflict is a 409 naming the fields and
// their managers, as the API server's.
func (f *fieldManager) Apply(live runtime.Object, patch []byte, manager string, force bool) (runtime.Object, error) {
	return nil, errors.New("server-side apply is not served yet")
}
