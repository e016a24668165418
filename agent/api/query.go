package api

import (
	"net/http"
	"net/url"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// listQuery is the decoded query of a list, get or watch.
type listQuery struct {
	labels          labels.Selector
	fields          fields.Selector
	watch           bool
	resourceVersion string
	timeoutSeconds  int64 // 0 = none
	includeObject   metav1.IncludeObjectPolicy
}

func parseListQuery(res *resource, v url.Values) (listQuery, error) {
	q := listQuery{labels: labels.Everything(), fields: fields.Everything(), resourceVersion: v.Get("resourceVersion")}
	var err error
	if s := v.Get("labelSelector"); s != "" {
		if q.labels, err = labels.Parse(s); err != nil {
			return q, badRequest("invalid labelSelector %q: %v", s, err)
		}
	}
	if s := v.Get("fieldSelector"); s != "" {
		if q.fields, err = fields.ParseSelector(s); err != nil {
			return q, badRequest("invalid fieldSelector %q: %v", s, err)
		}
		supported := res.fieldLabels()
		for _, r := range q.fields.Requirements() {
			if !supported[r.Field] {
				// The API server's words for an unknown field label.
				return q, badRequest("field label not supported: %s", r.Field)
			}
		}
	}
	if s := v.Get("watch"); s != "" {
		if q.watch, err = strconv.ParseBool(s); err != nil {
			return q, badRequest("invalid watch %q: %v", s, err)
		}
	}
	if s := v.Get("timeoutSeconds"); s != "" {
		if q.timeoutSeconds, err = strconv.ParseInt(s, 10, 64); err != nil || q.timeoutSeconds < 0 {
			return q, badRequest("invalid timeoutSeconds %q: must be a non-negative integer", s)
		}
	}
	switch p := metav1.IncludeObjectPolicy(v.Get("includeObject")); p {
	case "", metav1.IncludeMetadata, metav1.IncludeObject, metav1.IncludeNone:
		q.includeObject = p
	default:
		return q, badRequest("invalid includeObject %q: must be one of None, Metadata, Object", p)
	}
	return q, nil
}

// matches reports whether obj passes the query's selectors.
func (q listQuery) matches(res *resource, obj runtime.Object) bool {
	if !q.labels.Empty() && !q.labels.Matches(labels.Set(metaOf(obj).GetLabels())) {
		return false
	}
	return q.fields.Empty() || q.fields.Matches(res.fields(obj))
}

func notAcceptable() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotAcceptable,
		Reason:  metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io",
	}}
}

// andName narrows a field selector to one object name.
func andName(sel fields.Selector, name string) fields.Selector {
	return fields.AndSelectors(sel, fields.OneTermEqualSelector("metadata.name", name))
}
