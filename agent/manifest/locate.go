package manifest

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
)

// locateDecodeError finds which field made a typed decode fail, which the
// JSON decoder does not say for errors from UnmarshalJSON methods (a bad
// quantity such as `cpu: 1xyz`) nor, with indices, for type mismatches. It
// walks the document as generic JSON alongside the Go type and decodes each
// leaf on its own; the first leaf that fails is the culprit. It returns nil
// if no single leaf fails (the caller then reports the decoder's error).
func locateDecodeError(raw []byte, t reflect.Type) *field.Error {
	var generic any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &generic); err != nil {
		return nil
	}
	return locate(generic, t, nil)
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func locate(v any, t reflect.Type, path *field.Path) *field.Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil // null is valid for every field
	}
	custom := reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)
	if !custom {
		switch t.Kind() {
		case reflect.Struct:
			if m, ok := v.(map[string]any); ok {
				for _, k := range sortedKeys(m) {
					f, ok := jsonField(t, k)
					if !ok {
						continue // unknown fields are the strict decoder's business
					}
					if e := locate(m[k], f.Type, child(path, k)); e != nil {
						return e
					}
				}
				return nil
			}
		case reflect.Map:
			if m, ok := v.(map[string]any); ok {
				for _, k := range sortedKeys(m) {
					if e := locate(m[k], t.Elem(), keyed(path, k)); e != nil {
						return e
					}
				}
				return nil
			}
		case reflect.Slice:
			if s, ok := v.([]any); ok && t.Elem().Kind() != reflect.Uint8 {
				for i, item := range s {
					if e := locate(item, t.Elem(), path.Index(i)); e != nil {
						return e
					}
				}
				return nil
			}
		}
	}
	// A leaf (or a value of the wrong JSON type): decode it alone.
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(b, reflect.New(t).Interface()); err != nil {
		if path == nil {
			return nil
		}
		return field.Invalid(path, v, leafMessage(err))
	}
	return nil
}

// leafMessage drops the Go type names encoding/json puts in its messages.
func leafMessage(err error) string {
	var te *json.UnmarshalTypeError
	if ok := asTypeError(err, &te); ok {
		return fmt.Sprintf("expected %s, got %s", jsonKindOf(te.Type), te.Value)
	}
	return err.Error()
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	te, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = te
	}
	return ok
}

func jsonKindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

func child(path *field.Path, name string) *field.Path {
	if path == nil {
		return field.NewPath(name)
	}
	return path.Child(name)
}

func keyed(path *field.Path, key string) *field.Path {
	if path == nil {
		return field.NewPath(key)
	}
	return path.Key(key)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonField finds the struct field that JSON key k decodes into, looking
// through embedded and ",inline" structs as encoding/json does.
func jsonField(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		inline := (f.Anonymous && name == "") || strings.Contains(","+opts+",", ",inline,")
		if inline {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if sf, ok := jsonField(ft, k); ok {
					return sf, true
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == k && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
