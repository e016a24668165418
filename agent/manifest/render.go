package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// KeyOf names a *corev1.Pod, ConfigMap, Secret or Namespace; ok is false
// for any other object.
func KeyOf(obj runtime.Object) (k ObjectKey, ok bool) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return ObjectKey{Kind: "Pod", Namespace: o.Namespace, Name: o.Name}, true
	case *corev1.ConfigMap:
		return ObjectKey{Kind: "ConfigMap", Namespace: o.Namespace, Name: o.Name}, true
	case *corev1.Secret:
		return ObjectKey{Kind: "Secret", Namespace: o.Namespace, Name: o.Name}, true
	case *corev1.Namespace:
		return ObjectKey{Kind: "Namespace", Name: o.Name}, true
	}
	return ObjectKey{}, false
}

// renderMap is obj as the manifest document the API writes, as generic
// JSON: apiVersion v1 and its kind, without what the store and the decoder
// set (status, uid, resourceVersion, creationTimestamp, generation, the
// deletion fields, kubelet's config.hash and config.source annotations, a
// pod's spec.nodeName and the NoExecute toleration preparePod adds).
// metadata.managedFields and the last-applied-configuration annotation
// are kept: server-side and client-side apply need them after a reboot.
func renderMap(obj runtime.Object) (map[string]any, error) {
	k, ok := KeyOf(obj)
	if !ok {
		return nil, fmt.Errorf("render manifest: unsupported object %T", obj)
	}
	obj = obj.DeepCopyObject()
	switch o := obj.(type) {
	case *corev1.Pod:
		o.Spec.NodeName = ""
		o.Spec.Tolerations = withoutStaticToleration(o.Spec.Tolerations)
		o.Status = corev1.PodStatus{}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{}
	}
	m := metaOf(obj)
	clearSystemFields(m)
	delete(m.Annotations, ConfigHashAnnotationKey)
	delete(m.Annotations, ConfigSourceAnnotationKey)
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("render manifest of %s: %w", k, err)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // integers stay exact
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("render manifest of %s: %w", k, err)
	}
	doc["apiVersion"], doc["kind"] = "v1", k.Kind
	delete(doc, "status")
	if meta, ok := doc["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp") // a zero metav1.Time encodes as null
	}
	return doc, nil
}

// withoutStaticToleration drops the toleration addNoExecuteToleration
// added: the last one, when it is exactly that toleration and no earlier
// one matches it (then the decoder adds it back, in the same place). A
// toleration the writer put elsewhere, or with tolerationSeconds, stays.
func withoutStaticToleration(ts []corev1.Toleration) []corev1.Toleration {
	if len(ts) == 0 {
		return ts
	}
	t := staticPodToleration()
	last := ts[len(ts)-1]
	if !reflect.DeepEqual(last, t) {
		return ts
	}
	for _, have := range ts[:len(ts)-1] {
		if have.MatchToleration(&t) {
			return ts
		}
	}
	if len(ts) == 1 {
		return nil
	}
	return ts[:len(ts)-1]
}

// renderYAML is renderMap's document in YAML (keys sorted, so apiVersion,
// kind, metadata, spec come in that order).
func renderYAML(obj runtime.Object) ([]byte, error) {
	doc, err := renderMap(obj)
	if err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("render manifest: %w", err)
	}
	return b, nil
}

// renderJSON is renderMap's document as indented JSON.
func renderJSON(obj runtime.Object) ([]byte, error) {
	doc, err := renderMap(obj)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render manifest: %w", err)
	}
	return b, nil
}

// Check decodes obj exactly as a document of a file would be (strict
// decoding, defaults, validation) from the document Render would write,
// and returns the object the Set would then hold: defaulted, with its UID
// and, for a pod, kubelet's static-pod fields. An object that does not
// pass is a *DocumentError; its FieldErrors are the API's Invalid causes.
func Check(obj runtime.Object, opts Options) (runtime.Object, error) {
	k, ok := KeyOf(obj)
	if !ok {
		return nil, fmt.Errorf("check manifest: unsupported object %T", obj)
	}
	doc, err := renderYAML(obj)
	if err != nil {
		return nil, err
	}
	d, derr := decodeOne(doc, opts)
	if derr != nil {
		return nil, derr
	}
	if d.key() != k {
		// Only defaulting can move an object (an empty namespace).
		return nil, &DocumentError{Index: 0, Kind: k.Kind, Namespace: k.Namespace, Name: k.Name,
			Err: fmt.Errorf("the object decodes as %s", d.key())}
	}
	return d.obj.(runtime.Object), nil
}

// decodeOne decodes a document rendered by renderYAML.
func decodeOne(doc []byte, opts Options) (*decoded, *DocumentError) {
	docs := splitYAML(doc, 0)
	if len(docs) != 1 || docs[0].err != nil {
		return nil, &DocumentError{Index: 0, Err: errors.New("the rendered manifest is not one YAML document")}
	}
	objs, errs, _ := decodeDocument("", docs[0], opts)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	if len(objs) != 1 {
		return nil, &DocumentError{Index: 0, Err: errors.New("the rendered manifest holds no object")}
	}
	return objs[0], nil
}

// Render returns obj as the YAML document the API writes to the flash:
// see renderMap for what is left out.
func Render(obj runtime.Object) ([]byte, error) { return renderYAML(obj) }

// FieldErrors returns the field errors behind e (validation, a bad value,
// unknown or duplicate fields), or nil when e is not about fields.
func (e *DocumentError) FieldErrors() field.ErrorList {
	var out field.ErrorList
	var walk func(err error)
	walk = func(err error) {
		switch x := err.(type) {
		case *field.Error:
			out = append(out, x)
		case interface{ Errors() []error }: // utilerrors.Aggregate
			for _, e := range x.Errors() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(e.Err)
	return out
}
