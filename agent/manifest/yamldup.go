package manifest

import (
	"fmt"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// yamlDuplicateFields lists the keys that appear twice in one YAML mapping,
// with their field paths. YAML-to-JSON conversion keeps only the last value
// of a repeated key, so the strict JSON decoder cannot see the repetition;
// the API server reports it (YAMLToJSONStrict) and so do we, with a path.
// JSON documents need no such pass: the strict decoder sees their keys.
func yamlDuplicateFields(src []byte) []error {
	var root yamlv2.MapSlice
	// yaml.v2 decodes every nested mapping of a MapSlice as a MapSlice too,
	// keeping repeated keys in order. Errors were already reported by the
	// conversion to JSON; a document that is not a mapping has no fields.
	if err := yamlv2.Unmarshal(src, &root); err != nil {
		return nil
	}
	var errs []error
	walkYAMLDuplicates(root, nil, &errs)
	return errs
}

func walkYAMLDuplicates(v any, path *field.Path, errs *[]error) {
	switch v := v.(type) {
	case yamlv2.MapSlice:
		seen := map[string]bool{}
		for _, item := range v {
			key := fmt.Sprint(item.Key)
			child := path.Child(key)
			if path == nil {
				child = field.NewPath(key)
			}
			if seen[key] {
				*errs = append(*errs, &strictFieldError{kind: "duplicate field", path: child.String()})
			}
			seen[key] = true
			walkYAMLDuplicates(item.Value, child, errs)
		}
	case []any:
		for i, item := range v {
			if path == nil {
				continue // a top-level sequence is not an object; reported elsewhere
			}
			walkYAMLDuplicates(item, path.Index(i), errs)
		}
	}
}

// strictFieldError reads like sigs.k8s.io/json's strict errors:
// `duplicate field "spec.containers[0].name"`.
type strictFieldError struct {
	kind string
	path string
}

func (e *strictFieldError) Error() string     { return fmt.Sprintf("%s %q", e.kind, e.path) }
func (e *strictFieldError) FieldPath() string { return e.path }
