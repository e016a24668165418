package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
)

// Decode decodes one file's documents into a Set. file names the file in
// errors (and decides JSON-only reading for ".json"); it is not opened.
func Decode(file string, data []byte, opts Options) *Set {
	return merge([]*fileResult{decodeFile(file, data, opts)})
}

func decodeFile(file string, data []byte, opts Options) *fileResult {
	r := &fileResult{}
	docs := splitDocuments(file, data)
	if len(docs) == 0 {
		r.broken = true // nothing at all: possibly truncated to zero by a writer
		return r
	}
	for _, doc := range docs {
		if doc.err != nil {
			r.broken = true
			r.errors = append(r.errors, &DocumentError{File: file, Index: doc.index, Err: doc.err})
			continue
		}
		objs, errs, notObject := decodeDocument(file, doc, opts)
		r.objects = append(r.objects, objs...)
		r.errors = append(r.errors, errs...)
		if notObject {
			r.broken = true
		}
	}
	return r
}

// head is the part of a document read before its kind is known, so that
// errors can name the object even when strict decoding fails.
type head struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func readHead(raw []byte) (head, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return head{}, false
	}
	var h head
	// Best effort: a wrongly typed field is reported by the strict decoder.
	_ = json.Unmarshal(raw, &h)
	return h, true
}

// decodeDocument decodes one document, which may be a List. notObject
// reports a document that is valid YAML/JSON but not a mapping (a bare
// scalar is what a truncated first line looks like).
func decodeDocument(file string, doc document, opts Options) (objs []*decoded, errs []*DocumentError, notObject bool) {
	h, ok := readHead(doc.json)
	if !ok {
		return nil, []*DocumentError{{File: file, Index: doc.index,
			Err: fmt.Errorf("document is not an object: %.40q", doc.json)}}, true
	}
	var dups []error
	if doc.yaml != nil {
		dups = yamlDuplicateFields(doc.yaml)
	}
	if h.APIVersion == "v1" && h.Kind == "List" {
		if len(dups) > 0 {
			return nil, []*DocumentError{strictError(file, doc.index, h, "List", dups)}, false
		}
		return decodeList(file, doc.index, doc.json, opts)
	}
	d, derr := decodeObject(file, doc.index, doc.json, h, dups, opts)
	if derr != nil {
		return nil, []*DocumentError{derr}, false
	}
	return []*decoded{d}, nil, false
}

// list is a v1 List: metav1.List, with items kept raw so that each is
// decoded (and reported) on its own.
type list struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []json.RawMessage `json:"items"`
}

func decodeList(file string, index int, raw []byte, opts Options) ([]*decoded, []*DocumentError, bool) {
	var l list
	strict, err := kjson.UnmarshalStrict(raw, &l)
	if err == nil && len(strict) > 0 {
		err = utilerrors.NewAggregate(strict)
	}
	if err != nil {
		return nil, []*DocumentError{{File: file, Index: index, Kind: "List", Err: fmt.Errorf("decode List: %w", err)}}, false
	}
	var objs []*decoded
	var errs []*DocumentError
	for i, item := range l.Items {
		prefix := fmt.Sprintf("items[%d]", i)
		h, ok := readHead(item)
		var d *decoded
		var derr *DocumentError
		switch {
		case !ok:
			derr = &DocumentError{File: file, Index: index, Field: prefix, Err: errors.New("item is not an object")}
		case h.APIVersion == "v1" && h.Kind == "List":
			derr = identify(&DocumentError{File: file, Index: index, Field: "kind", Err: errors.New("a List may not contain a List")}, h, "List")
		default:
			d, derr = decodeObject(file, index, item, h, nil, opts)
			if d != nil {
				d.item = i
			}
		}
		if derr != nil {
			if derr.Field != "" && derr.Field != prefix {
				derr.Field = prefix + "." + derr.Field
			}
			derr.Err = fmt.Errorf("%s: %w", prefix, derr.Err)
			errs = append(errs, derr)
			continue
		}
		objs = append(objs, d)
	}
	return objs, errs, false
}

// decodeObject strictly decodes, cleans, defaults and validates one object.
func decodeObject(file string, index int, raw []byte, h head, dups []error, opts Options) (*decoded, *DocumentError) {
	fail := func(fieldPath string, err error) *DocumentError {
		return identify(&DocumentError{File: file, Index: index, Field: fieldPath, Err: err}, h, h.Kind)
	}
	switch {
	case h.Kind == "":
		return nil, fail("kind", field.Required(field.NewPath("kind"), "every document needs apiVersion and kind"))
	case h.APIVersion == "":
		return nil, fail("apiVersion", field.Required(field.NewPath("apiVersion"), fmt.Sprintf("kind %s needs apiVersion v1", h.Kind)))
	}
	var obj any
	switch h.Kind {
	case "Pod":
		obj = &corev1.Pod{}
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "Secret":
		obj = &corev1.Secret{}
	case "Namespace":
		obj = &corev1.Namespace{}
	default:
		return nil, fail("kind", fmt.Errorf("unsupported kind %q (apiVersion %q): podboot reads v1 Pod, ConfigMap, Secret, Namespace and List", h.Kind, h.APIVersion))
	}
	if h.APIVersion != "v1" {
		return nil, fail("apiVersion", fmt.Errorf("unsupported kind %q in apiVersion %q: %s is read from apiVersion v1", h.Kind, h.APIVersion, h.Kind))
	}

	strict, err := kjson.UnmarshalStrict(raw, obj)
	if err != nil {
		if fe := locateDecodeError(raw, reflect.TypeOf(obj).Elem()); fe != nil {
			if h.Kind == "Secret" {
				// A Secret's values never reach a log or an event.
				fe.BadValue = field.OmitValueType{}
			}
			return nil, fail(fe.Field, field.ErrorList{fe}.ToAggregate())
		}
		return nil, fail("", fmt.Errorf("decode %s: %w", h.Kind, err))
	}
	if strict = append(dups, strict...); len(strict) > 0 {
		return nil, strictError(file, index, h, h.Kind, strict)
	}

	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = preparePod(o, opts)
	case *corev1.ConfigMap:
		errs = prepareConfigMap(o, opts)
	case *corev1.Secret:
		errs = prepareSecret(o, opts)
	case *corev1.Namespace:
		errs = prepareNamespace(o, opts)
	}
	if len(errs) > 0 {
		return nil, fail(errs[0].Field, errs.ToAggregate())
	}
	m := metaOf(obj)
	return &decoded{file: file, index: index, item: -1, kind: h.Kind, ns: m.Namespace, name: m.Name, obj: obj}, nil
}

func metaOf(obj any) *metav1.ObjectMeta {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta
	case *corev1.ConfigMap:
		return &o.ObjectMeta
	case *corev1.Secret:
		return &o.ObjectMeta
	case *corev1.Namespace:
		return &o.ObjectMeta
	}
	return &metav1.ObjectMeta{}
}

// strictError reports unknown and duplicate fields; Field is the first one.
func strictError(file string, index int, h head, kind string, errs []error) *DocumentError {
	var path string
	var fe interface{ FieldPath() string }
	if errors.As(errs[0], &fe) {
		path = fe.FieldPath()
	}
	return identify(&DocumentError{File: file, Index: index, Field: path,
		Err: fmt.Errorf("strict decoding error: %w", utilerrors.NewAggregate(errs))}, h, kind)
}

// identify fills in what the document says it is, defaulting the namespace
// of namespaced kinds as the object itself would be defaulted.
func identify(e *DocumentError, h head, kind string) *DocumentError {
	e.Kind, e.Name, e.Namespace = kind, h.Metadata.Name, h.Metadata.Namespace
	switch kind {
	case "Namespace", "List":
		e.Namespace = ""
	case "Pod", "ConfigMap", "Secret":
		if e.Namespace == "" {
			e.Namespace = metav1.NamespaceDefault
		}
	}
	return e
}
