package api

import (
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/yaml"
)

//go:generate go run fieldmanager_gen.go

// schemaYAML holds the structured-merge schemas of the kinds the API
// writes and the types they reach: client-go's, cut down to core/v1 by
// fieldmanager_gen.go (client-go's whole converter costs podagent 16 MB).
//
//go:embed fieldmanager_schema.yaml
var schemaYAML string

// fieldManager keeps metadata.managedFields as the API server does and
// applies server-side apply patches: apimachinery's managedfields, the
// same FieldManager kube-apiserver builds per resource (docs/api.md,
// "Server-side apply"). Its schemas are parsed at the first write, not
// at start: 10-50 ms here, several times that on a board, for something
// most boots never use.
type fieldManager struct {
	scheme *runtime.Scheme

	once     sync.Once
	managers map[schema.GroupVersionKind]*managedfields.FieldManager // read-only once built
	err      error
}

// applyKinds are the kinds whose writes the API serves. resetFields are
// the fields each kind's REST strategy resets on a write to the main
// resource (GetResetFields in pkg/registry/core/*/strategy.go): an apply
// that sets them owns nothing there, as on the API server.
var applyKinds = []struct {
	kind        string
	resetFields []string
}{
	{"Pod", []string{"status"}},
	{"Namespace", []string{"status"}},
	{"ConfigMap", nil},
	{"Secret", nil},
}

func newFieldManager() (*fieldManager, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build the field manager's scheme: %w", err)
	}
	return &fieldManager{scheme: scheme}, nil
}

// load builds the FieldManager of each kind once.
func (f *fieldManager) load() error {
	f.once.Do(func() { f.managers, f.err = buildFieldManagers(f.scheme) })
	return f.err
}

func buildFieldManagers(scheme *runtime.Scheme) (map[schema.GroupVersionKind]*managedfields.FieldManager, error) {
	parser, err := typed.NewParser(typed.YAMLObject(schemaYAML))
	if err != nil {
		return nil, fmt.Errorf("parse the field manager's schemas: %w", err)
	}
	converter := managedfields.NewSchemeTypeConverter(scheme, parser)
	managers := map[schema.GroupVersionKind]*managedfields.FieldManager{}
	for _, k := range applyKinds {
		gvk := corev1.SchemeGroupVersion.WithKind(k.kind)
		var reset map[fieldpath.APIVersion]fieldpath.Filter
		if len(k.resetFields) > 0 {
			paths := make([]fieldpath.Path, len(k.resetFields))
			for i, p := range k.resetFields {
				paths[i] = fieldpath.MakePathOrDie(p)
			}
			reset = map[fieldpath.APIVersion]fieldpath.Filter{
				fieldpath.APIVersion(corev1.SchemeGroupVersion.String()): fieldpath.NewExcludeSetFilter(fieldpath.NewSet(paths...)),
			}
		}
		// The hub is v1 itself: the agent holds only v1 objects, where the
		// API server converts to its internal version. The scheme has no
		// defaulting functions; the flash's Save defaults what is stored.
		m, err := managedfields.NewDefaultFieldManager(converter, scheme, scheme, scheme, gvk, corev1.SchemeGroupVersion, "", reset)
		if err != nil {
			return nil, fmt.Errorf("build the field manager of %s: %w", k.kind, err)
		}
		managers[gvk] = m
	}
	return managers, nil
}

// managerOf returns the FieldManager of obj's kind, which obj's Go type
// names whatever its TypeMeta says.
func (f *fieldManager) managerOf(obj runtime.Object) (schema.GroupVersionKind, *managedfields.FieldManager, error) {
	if err := f.load(); err != nil {
		return schema.GroupVersionKind{}, nil, err
	}
	gvks, _, err := f.scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return schema.GroupVersionKind{}, nil, fmt.Errorf("managed fields of a %T: not a kind the API writes", obj)
	}
	gvk := gvks[0]
	m := f.managers[gvk]
	if m == nil {
		return gvk, nil, fmt.Errorf("managed fields of a %s: not a kind the API writes", gvk.Kind)
	}
	return gvk, m, nil
}

// Update records manager's ownership of what changed from live (nil on
// create) to obj, an Update operation (create, replace, patch), and
// returns obj with its managedFields.
func (f *fieldManager) Update(live, obj runtime.Object, manager string) (runtime.Object, error) {
	gvk, m, err := f.managerOf(obj)
	if err != nil {
		return nil, err
	}
	if live == nil {
		// A create is an update from the empty object, as the API
		// server's create handler does it.
		if live, err = f.scheme.New(gvk); err != nil {
			return nil, fmt.Errorf("managed fields of a new %s: %w", gvk.Kind, err)
		}
	}
	live, obj = f.withKind(live, gvk), f.withKind(obj, gvk)
	// UpdateNoErrors, as the API server's handlers: a failure to compute
	// managed fields keeps live's and never fails the write.
	out := m.UpdateNoErrors(live, obj, manager)
	settle(out, gvk)
	return out, nil
}

// Apply applies a server-side apply patch (application/apply-patch+yaml)
// by manager to live (nil, or an empty object of the URL's kind, when the
// object does not exist yet); force takes over conflicting fields. A
// conflict is a 409 naming the fields and their managers, as the API
// server's. The result is not defaulted: the write path's Save defaults
// and validates it as any other write.
func (f *fieldManager) Apply(live runtime.Object, patch []byte, manager string, force bool) (runtime.Object, error) {
	applied := &unstructured.Unstructured{Object: map[string]any{}}
	if err := yaml.Unmarshal(patch, &applied.Object); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	if applied.Object == nil {
		// "null" decodes to a nil map; the API server then reports the
		// missing kind.
		applied.Object = map[string]any{}
	}
	if err := f.load(); err != nil {
		return nil, err
	}
	if live == nil {
		// A new object: the empty object of the patch's kind, as the API
		// server's create-on-apply starts from its registry's new object.
		gvk := applied.GroupVersionKind()
		if f.managers[gvk] == nil {
			// The API server's version check, which would find the
			// URL's kind differing from the patch's.
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid object type: %v", gvk))
		}
		var err error
		if live, err = f.scheme.New(gvk); err != nil {
			return nil, fmt.Errorf("apply a new %s: %w", gvk.Kind, err)
		}
	}
	liveGVK, m, err := f.managerOf(live)
	if err != nil {
		return nil, err
	}
	// The field manager's version check refuses a patch of another kind
	// or version than live's ("invalid object type: ...").
	out, err := m.Apply(f.withKind(live, liveGVK), applied, manager, force)
	if err != nil {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return nil, err
		}
		// What the API server makes of an error that is not a Status
		// (responsewriters.ErrorToAPIStatus): a 500 with the error's text
		// and no reason. A patch with a field the schema does not declare
		// gets it (kubernetes/kubernetes#139253).
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: err.Error(),
		}}
	}
	settle(out, liveGVK)
	return out, nil
}

// withKind returns obj with its TypeMeta set to gvk, which the field
// manager needs to find the schema (the store's objects carry it; a
// decoded request body may not); obj itself is not changed.
func (f *fieldManager) withKind(obj runtime.Object, gvk schema.GroupVersionKind) runtime.Object {
	if obj.GetObjectKind().GroupVersionKind() == gvk {
		return obj
	}
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj
}

// settle gives out its kind and its managedFields' times in whole seconds:
// what the API server's objects have once serialized, and what the
// manifest on the flash gives back after a reboot, so the object the API
// answers now equals the one it serves later.
func settle(out runtime.Object, gvk schema.GroupVersionKind) {
	out.GetObjectKind().SetGroupVersionKind(gvk)
	m, err := meta.Accessor(out)
	if err != nil {
		return
	}
	entries := m.GetManagedFields()
	for i := range entries {
		if entries[i].Time != nil {
			t := entries[i].Time.Rfc3339Copy()
			entries[i].Time = &t
		}
	}
	m.SetManagedFields(entries)
}
