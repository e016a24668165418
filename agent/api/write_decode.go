package api

import (
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	serprotobuf "k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/podboot/podboot/agent/store"
)

// codecs decode write bodies into the core v1 types, strictly or not, as
// the API server's serializers do (JSON, and YAML as kubectl can send it).
type codecs struct {
	json, yaml, strictJSON, strictYAML, protobuf runtime.Decoder
	// params decodes a write's query into its options (CreateOptions,
	// ...), with meta/v1's conversions from url.Values.
	params runtime.ParameterCodec
}

// bodyMediaTypes are the media types a create or update body may have, in
// the API server's order. Typed clients send protobuf (kubectl create
// namespace does).
var bodyMediaTypes = []string{runtime.ContentTypeJSON, runtime.ContentTypeYAML, runtime.ContentTypeProtobuf}

func newCodecs() *codecs {
	scheme := runtime.NewScheme()
	// AddToScheme only registers types; it fails only for a type
	// registered twice, which a fresh scheme cannot hold.
	_ = corev1.AddToScheme(scheme)
	ser := func(yaml, strict bool) runtime.Decoder {
		return serjson.NewSerializerWithOptions(serjson.DefaultMetaFactory, scheme, scheme,
			serjson.SerializerOptions{Yaml: yaml, Strict: strict})
	}
	params := runtime.NewScheme()
	metav1.AddToGroupVersion(params, metav1.SchemeGroupVersion)
	return &codecs{
		json: ser(false, false), yaml: ser(true, false), strictJSON: ser(false, true), strictYAML: ser(true, true),
		// Protobuf has no unknown or duplicate fields to be strict about.
		protobuf: serprotobuf.NewSerializer(scheme, scheme),
		params:   runtime.NewParameterCodec(params),
	}
}

// decodeObject decodes a create or replace body into res's type as the
// API server does: the Content-Type picks the serializer, the
// fieldValidation directive its strictness (Warn turns strict errors into
// warnings), and a body of another kind or version is a BadRequest.
func (s *server) decodeObject(wr *writeRequest, body []byte, directive string) (runtime.Object, error) {
	res := wr.req.res
	mt := runtime.ContentTypeJSON
	if ct := wr.r.Header.Get("Content-Type"); ct != "" {
		mt = mediaType(ct)
	}
	strict := directive == metav1.FieldValidationWarn || directive == metav1.FieldValidationStrict
	c := s.writes.codecs
	var dec runtime.Decoder
	switch {
	case mt == runtime.ContentTypeJSON && strict:
		dec = c.strictJSON
	case mt == runtime.ContentTypeJSON:
		dec = c.json
	case mt == runtime.ContentTypeYAML && strict:
		dec = c.strictYAML
	case mt == runtime.ContentTypeYAML:
		dec = c.yaml
	case mt == runtime.ContentTypeProtobuf:
		dec = c.protobuf
	default:
		return nil, unsupportedMediaType(bodyMediaTypes)
	}
	want := store.GroupVersionKind(res.kind)
	def := want
	obj, gvk, err := dec.Decode(body, &def, zeroObject(res.kind))
	if err != nil {
		strictErr, isStrict := runtime.AsStrictDecodingError(err)
		if !isStrict || obj == nil || directive != metav1.FieldValidationWarn {
			return nil, transformDecodeError(err, res.kind, gvk, body)
		}
		for _, e := range strictErr.Errors() {
			for _, w := range yamlWarnings(e.Error()) {
				wr.warn(w)
			}
		}
	}
	if gvk == nil || *gvk != want {
		got := schema.GroupVersionKind{}
		if gvk != nil {
			got = *gvk
		}
		if got.GroupVersion() != want.GroupVersion() {
			return nil, badRequest("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), want.GroupVersion())
		}
		// The API server fails converting the decoded object into the
		// endpoint's internal type.
		return nil, badRequest("%s in version %q cannot be handled as a %s: converting (%s.%s) to (core.%s): unknown conversion",
			got.Kind, got.Version, want.Kind, got.Version, got.Kind, want.Kind)
	}
	if _, ok := obj.(metav1.Object); !ok {
		return nil, badRequest("the object provided is unrecognized (must be of type %s)", res.kind)
	}
	// A body may leave out apiVersion and kind; what follows (the field
	// manager, the flash) reads them.
	obj.GetObjectKind().SetGroupVersionKind(want)
	return obj, nil
}

// transformDecodeError is the API server's BadRequest for a body it could
// not decode.
func transformDecodeError(err error, kind string, gvk *schema.GroupVersionKind, body []byte) error {
	if gvk != nil && gvk.Kind != "" {
		return badRequest("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, kind, err)
	}
	return badRequest("the object provided is unrecognized (must be of type %s): %v (%s)", kind, err, summarizeData(body, 30))
}

// summarizeData is the API server's short form of a body in an error.
func summarizeData(data []byte, maxLength int) string {
	switch {
	case len(data) == 0:
		return "<empty>"
	case data[0] == '{':
		if len(data) > maxLength {
			return string(data[:maxLength]) + " ..."
		}
		return string(data)
	default:
		if len(data) > maxLength {
			return hex.EncodeToString(data[:maxLength]) + " ..."
		}
		return hex.EncodeToString(data)
	}
}

// yamlWarnings splits a YAML strict error into one warning per line, as
// the API server's parseYAMLWarnings.
func yamlWarnings(msg string) []string {
	const short, long = "yaml: unmarshal errors:\n", "error converting YAML to JSON: yaml: unmarshal errors:\n"
	var rest string
	switch {
	case strings.HasPrefix(msg, short):
		rest = strings.TrimPrefix(msg, short)
	case strings.HasPrefix(msg, long):
		rest = strings.TrimPrefix(msg, long)
	default:
		return []string{msg}
	}
	lines := strings.Split(rest, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return lines
}

// unsupportedMediaType is the API server's 415.
func unsupportedMediaType(accepted []string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    415,
		Reason:  metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s", strings.Join(accepted, ", ")),
	}}
}
