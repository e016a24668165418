package api

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	serprotobuf "k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The self reviews every authenticated user may create (kube-apiserver's
// system:basic-user ClusterRole): `kubectl auth whoami` and `kubectl auth
// can-i`, and dashboards asking which actions to offer.
const (
	selfSubjectReviewPath       = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
	selfSubjectAccessReviewPath = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
	reviewMaxBody               = 64 << 10
)

// serveSelfReview answers a self review for u, and reports whether the
// request was one. Nothing is stored: a review is a question.
func serveSelfReview(w http.ResponseWriter, r *http.Request, u User) bool {
	if r.Method != http.MethodPost {
		return false
	}
	var into runtime.Object
	switch r.URL.Path {
	case selfSubjectReviewPath:
		into = &authenticationv1.SelfSubjectReview{}
	case selfSubjectAccessReviewPath:
		into = &authorizationv1.SelfSubjectAccessReview{}
	default:
		return false
	}
	if err := decodeReview(r, into); err != nil {
		writeStatus(w, err)
		return true
	}
	var out any
	switch review := into.(type) {
	case *authenticationv1.SelfSubjectReview:
		review.Status.UserInfo = authenticationv1.UserInfo{Username: u.Name, Groups: u.Groups}
		out = review
	case *authorizationv1.SelfSubjectAccessReview:
		if err := reviewAccess(review, u); err != nil {
			writeStatus(w, err)
			return true
		}
		out = review
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out) // the client went away
	return true
}

// decodeReview reads a review as JSON or, as typed clients send it,
// protobuf.
func decodeReview(r *http.Request, into runtime.Object) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, reviewMaxBody+1))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("read the request body: %v", err))
	}
	if len(body) > reviewMaxBody {
		return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", reviewMaxBody))
	}
	scheme := runtime.NewScheme()
	if err := authenticationv1.AddToScheme(scheme); err != nil {
		return err
	}
	if err := authorizationv1.AddToScheme(scheme); err != nil {
		return err
	}
	var dec runtime.Decoder = serjson.NewSerializerWithOptions(serjson.DefaultMetaFactory, scheme, scheme, serjson.SerializerOptions{})
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == runtime.ContentTypeProtobuf {
		dec = serprotobuf.NewSerializer(scheme, scheme)
	}
	if _, _, err := dec.Decode(body, nil, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("decode the review: %v", err))
	}
	return nil
}

// reviewAccess answers a SelfSubjectAccessReview with the authorizer that
// guards the requests themselves.
func reviewAccess(review *authorizationv1.SelfSubjectAccessReview, u User) error {
	spec := review.Spec
	var info requestInfo
	switch {
	case spec.ResourceAttributes != nil && spec.NonResourceAttributes != nil:
		return invalidReview(field.Invalid(field.NewPath("spec", "nonResourceAttributes"), spec.NonResourceAttributes, "cannot be specified in combination with resourceAttributes"))
	case spec.ResourceAttributes != nil:
		a := spec.ResourceAttributes
		info = requestInfo{isResource: true, verb: a.Verb, apiGroup: a.Group, apiVersion: a.Version,
			namespace: a.Namespace, resource: a.Resource, subresource: a.Subresource, name: a.Name}
	case spec.NonResourceAttributes != nil:
		info = requestInfo{path: spec.NonResourceAttributes.Path, verb: spec.NonResourceAttributes.Verb}
	default:
		return invalidReview(field.Invalid(field.NewPath("spec", "resourceAttributes"), spec.NonResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: authorize(u, info)}
	return nil
}

// invalidReview is the API server's 422 for a review that asks nothing.
func invalidReview(err *field.Error) error {
	return apierrors.NewInvalid(schema.GroupKind{Group: authorizationv1.GroupName, Kind: "SelfSubjectAccessReview"}, "", field.ErrorList{err})
}
