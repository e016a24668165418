package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/agent/store"
)

// maxJSONPatchOperations is the API server's bound on a JSON patch.
const maxJSONPatchOperations = 10000

// patchTypes are the patch media types served, in the API server's order.
var patchTypes = []string{
	string(types.JSONPatchType), string(types.MergePatchType),
	string(types.StrategicMergePatchType), string(types.ApplyYAMLPatchType),
}

// patch serves PATCH of a named object: the API server's PatchResource.
// The patch is applied to the live object under the write lock, then
// stored as an update; a server-side apply of a missing object creates it.
func (s *server) patch(ctx context.Context, wr *writeRequest) (runtime.Object, int, error) {
	contentType := wr.r.Header.Get("Content-Type")
	if i := strings.Index(contentType, ";"); i > 0 {
		contentType = contentType[:i]
	}
	patchType := types.PatchType(contentType)
	supported := false
	for _, t := range patchTypes {
		supported = supported || t == contentType
	}
	if !supported {
		return nil, 0, unsupportedMediaType(patchTypes)
	}
	patchBytes, err := readBody(wr.r)
	if err != nil {
		return nil, 0, err
	}
	opts := &metav1.PatchOptions{}
	if err := s.decodeParameters(wr.r, opts); err != nil {
		return nil, 0, err
	}
	if errs := metav1validation.ValidatePatchOptions(opts, patchType); len(errs) > 0 {
		return nil, 0, invalidOptions("PatchOptions", errs)
	}
	if err := validatePatch(patchBytes, patchType); err != nil {
		return nil, 0, err
	}
	directive := fieldValidation(opts.FieldValidation)
	manager := managerOrUserAgent(opts.FieldManager, wr.r.UserAgent())
	info := writeInfo(wr.r, manager, opts.DryRun)
	force := opts.Force != nil && *opts.Force

	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	if err := s.opts.Flash.Refresh(ctx); err != nil {
		return nil, 0, err
	}
	res := wr.req.res
	live, exists := s.store.Get(res.kind, wr.req.namespace, wr.req.name)
	if !exists {
		if patchType != types.ApplyYAMLPatchType {
			return nil, 0, notFound(res, wr.req.name)
		}
		obj, err := s.applyPatch(wr, zeroObject(res.kind), patchBytes, opts.FieldManager, force, directive)
		if err != nil {
			return nil, 0, err
		}
		m := metaOf(obj)
		if m.GetUID() != "" {
			return nil, 0, apierrors.NewConflict(groupResource(res), wr.req.name,
				fmt.Errorf("uid mismatch: the provided object specified uid %s, and no existing object was found", m.GetUID()))
		}
		if err := s.checkPatched(wr, m); err != nil {
			return nil, 0, err
		}
		wipeSystemFields(m)
		out, err := s.createLocked(ctx, wr, obj, info)
		if err != nil {
			return nil, 0, err
		}
		return out, http.StatusCreated, nil
	}

	var obj runtime.Object
	switch patchType {
	case types.ApplyYAMLPatchType:
		obj, err = s.applyPatch(wr, live, patchBytes, opts.FieldManager, force, directive)
	case types.StrategicMergePatchType:
		obj, err = strategicPatch(wr, live, patchBytes, directive)
	default:
		obj, err = s.jsonPatch(wr, live, patchBytes, patchType, directive)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := s.checkPatched(wr, metaOf(obj)); err != nil {
		return nil, 0, err
	}
	if patchType != types.ApplyYAMLPatchType {
		obj = s.updateFields(live, obj, manager)
	}
	out, err := s.updateLocked(ctx, wr, live, obj, info)
	if err != nil {
		return nil, 0, err
	}
	return out, http.StatusOK, nil
}

// checkPatched is the patcher's check that the patch did not move the
// object to another namespace or name.
func (s *server) checkPatched(wr *writeRequest, m metav1.Object) error {
	if err := ensureNamespace(wr.req, m); err != nil {
		return err
	}
	return checkName(wr.req, m)
}

// validatePatch is the API server's validateAndTranscodePatch: the body
// must parse before anything else happens.
func validatePatch(patch []byte, patchType types.PatchType) error {
	if patchType == types.ApplyYAMLPatchType {
		if _, err := yaml.YAMLToJSON(patch); err != nil {
			return badRequest("error encoding patch: %v", err)
		}
		return nil
	}
	if !json.Valid(patch) {
		return badRequest("invalid JSON patch")
	}
	return nil
}

type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	From  string `json:"from"`
	Value any    `json:"value"`
}

// jsonPatch applies a JSON patch or a JSON merge patch to the live object
// as the API server's jsonPatcher.
func (s *server) jsonPatch(wr *writeRequest, live runtime.Object, patch []byte, patchType types.PatchType, directive string) (runtime.Object, error) {
	liveJSON, err := json.Marshal(live)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", wr.req.res.kind, wr.req.name, err)
	}
	checkStrict := directive == metav1.FieldValidationStrict || directive == metav1.FieldValidationWarn
	var patched []byte
	var strictErrs []error
	switch patchType {
	case types.JSONPatchType:
		if checkStrict {
			var ops []jsonPatchOp
			if strictErrs, err = kjson.UnmarshalStrict(patch, &ops); err != nil {
				return nil, badRequest("error decoding patch: %v", err)
			}
			for i, e := range strictErrs {
				strictErrs[i] = fmt.Errorf("json patch %v", e)
			}
		}
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if len(p) > maxJSONPatchOperations {
			return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf(
				"The allowed maximum operations in a JSON patch is %d, got %d", maxJSONPatchOperations, len(p)))
		}
		if patched, err = p.Apply(liveJSON); err != nil {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
		}
	default:
		if checkStrict {
			v := map[string]any{}
			if strictErrs, err = kjson.UnmarshalStrict(patch, &v); err != nil {
				return nil, badRequest("error decoding patch: %v", err)
			}
		}
		patched, err = jsonpatch.MergePatch(liveJSON, patch)
		if errors.Is(err, jsonpatch.ErrBadJSONPatch) {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}

	c := s.writes.codecs
	dec := c.json
	if checkStrict {
		dec = c.strictJSON
	}
	obj := zeroObject(wr.req.res.kind)
	def := live.GetObjectKind().GroupVersionKind()
	out, _, err := dec.Decode(patched, &def, obj)
	if err != nil {
		strictErr, isStrict := runtime.AsStrictDecodingError(err)
		switch {
		case !isStrict:
			return nil, patchInvalid(string(patched), err.Error())
		case directive == metav1.FieldValidationWarn:
			warnAll(wr, append(strictErrs, strictErr.Errors()...))
		default:
			return nil, patchInvalid(string(patched), runtime.NewStrictDecodingError(append(strictErrs, strictErr.Errors()...)).Error())
		}
	} else if len(strictErrs) > 0 {
		if directive != metav1.FieldValidationWarn {
			return nil, patchInvalid(string(patched), runtime.NewStrictDecodingError(strictErrs).Error())
		}
		warnAll(wr, strictErrs)
	}
	if out == nil || out.GetObjectKind().GroupVersionKind() != def {
		return nil, patchInvalid(string(patched), fmt.Sprintf("the patched object is not a %s", def.Kind))
	}
	return out, nil
}

// strategicPatch applies a strategic merge patch to the live object as
// the API server's smpPatcher, from the v1 types' patch struct tags.
func strategicPatch(wr *writeRequest, live runtime.Object, patch []byte, directive string) (runtime.Object, error) {
	liveMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(live)
	if err != nil {
		return nil, fmt.Errorf("convert %s %q: %w", wr.req.res.kind, wr.req.name, err)
	}
	checkStrict := directive == metav1.FieldValidationWarn || directive == metav1.FieldValidationStrict
	patchMap := map[string]any{}
	var strictErrs []error
	if checkStrict {
		if strictErrs, err = kjson.UnmarshalStrict(patch, &patchMap); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	} else if err = kjson.UnmarshalCaseSensitivePreserveInts(patch, &patchMap); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	schemaObj := zeroObject(wr.req.res.kind)
	patched, err := strategicpatch.StrategicMergeMapPatch(liveMap, patchMap, schemaObj)
	if err != nil {
		return nil, interpretStrategicMergePatchError(err)
	}
	obj := zeroObject(wr.req.res.kind)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(patched, obj, checkStrict); err != nil {
		strictErr, isStrict := runtime.AsStrictDecodingError(err)
		switch {
		case !isStrict:
			return nil, patchInvalid(fmt.Sprintf("%+v", patchMap), err.Error())
		case directive == metav1.FieldValidationWarn:
			warnAll(wr, append(strictErrs, strictErr.Errors()...))
		default:
			return nil, patchInvalid(fmt.Sprintf("%+v", patchMap), runtime.NewStrictDecodingError(append(strictErrs, strictErr.Errors()...)).Error())
		}
	} else if len(strictErrs) > 0 {
		if directive != metav1.FieldValidationWarn {
			return nil, patchInvalid(fmt.Sprintf("%+v", patchMap), runtime.NewStrictDecodingError(strictErrs).Error())
		}
		warnAll(wr, strictErrs)
	}
	obj.GetObjectKind().SetGroupVersionKind(live.GetObjectKind().GroupVersionKind())
	return obj, nil
}

// applyPatch applies a server-side apply patch through the field manager,
// then checks the patch strictly as the API server's applyPatcher.
func (s *server) applyPatch(wr *writeRequest, live runtime.Object, patch []byte, manager string, force bool, directive string) (runtime.Object, error) {
	var probe map[string]any
	if err := yaml.Unmarshal(patch, &probe); err != nil {
		return nil, badRequest("error decoding patch: %v", err)
	}
	obj, err := s.fields.Apply(live, patch, manager, force)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("apply %s %q: the field manager returned no object", wr.req.res.kind, wr.req.name))
	}
	if gvk := obj.GetObjectKind().GroupVersionKind(); gvk != store.GroupVersionKind(wr.req.res.kind) {
		// A patch of another kind: the API server's refusal when the
		// object reaches the endpoint's storage.
		return nil, badRequest("invalid object type: %v", gvk)
	}
	if directive == metav1.FieldValidationStrict || directive == metav1.FieldValidationWarn {
		if err := yaml.UnmarshalStrict(patch, &map[string]any{}); err != nil {
			if directive == metav1.FieldValidationStrict {
				return nil, badRequest("error strict decoding patch: %v", err)
			}
			warnAll(wr, []error{err})
		}
	}
	return obj, nil
}

func warnAll(wr *writeRequest, errs []error) {
	for _, e := range errs {
		for _, w := range yamlWarnings(e.Error()) {
			wr.warn(w)
		}
	}
}

// patchInvalid is the API server's 422 for a patch whose result does not
// decode: an Invalid error on the field "patch" with no kind or name.
func patchInvalid(value, detail string) error {
	return apierrors.NewInvalid(schema.GroupKind{}, "", field.ErrorList{field.Invalid(field.NewPath("patch"), value, detail)})
}

// interpretStrategicMergePatchError maps strategicpatch's errors to the
// API server's codes.
func interpretStrategicMergePatchError(err error) error {
	switch err {
	case mergepatch.ErrBadJSONDoc, mergepatch.ErrBadPatchFormatForPrimitiveList, mergepatch.ErrBadPatchFormatForRetainKeys,
		mergepatch.ErrBadPatchFormatForSetElementOrderList, mergepatch.ErrUnsupportedStrategicMergePatchFormat:
		return apierrors.NewBadRequest(err.Error())
	case mergepatch.ErrNoListOfLists, mergepatch.ErrPatchContentNotMatchRetainKeys:
		return apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "", schema.GroupResource{}, "", err.Error(), 0, false)
	}
	return err
}
