package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The groups that grant access (docs/api.md, "Authentication and
// authorization"). A user in neither may only read discovery and the
// public paths, as an authenticated user without RBAC bindings can on
// kube-apiserver (system:discovery, system:public-info-viewer).
const (
	// GroupAdmin may do everything: kube-apiserver's superuser group.
	GroupAdmin = "system:masters"
	// GroupReadOnly may get, list and watch every resource and read pod
	// logs and the non-resource paths, except podboot's own endpoints
	// (/podboot/...) other than the OTA status (GET /podboot/v1/ota); it
	// may not write, exec, attach or port-forward.
	GroupReadOnly = "podboot:read-only"
	// groupAuthenticated is added to every authenticated user, as
	// kube-apiserver's AuthenticatedGroupAdder does.
	groupAuthenticated = "system:authenticated"
)

// requestInfo is what kube-apiserver's RequestInfoFactory
// (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) reads from a
// request for authorization, ported for the paths this API serves: the
// "api" (groupless) and "apis" prefixes.
type requestInfo struct {
	isResource bool
	path       string
	// verb is Kubernetes' (get, list, watch, create, update, patch,
	// delete, deletecollection) for a resource request, the lower-case
	// HTTP method for any other.
	verb                  string
	apiGroup, apiVersion  string
	namespace             string
	resource, subresource string
	name                  string
}

// namespaceSubresources are the subresources of a namespace: the parser
// must not read them as a resource in the namespace.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// newRequestInfo is RequestInfoFactory.NewRequestInfo with APIPrefixes
// {api, apis} and GrouplessAPIPrefixes {api}. Where the factory gives up
// on a path (a special verb with nothing after it), the request is still
// a resource request with what was parsed, as the factory returns it.
func newRequestInfo(r *http.Request) requestInfo {
	info := requestInfo{path: r.URL.Path, verb: strings.ToLower(r.Method)}
	parts := splitPath(r.URL.Path)
	if len(parts) < 3 || parts[0] != "api" && parts[0] != "apis" {
		return info
	}
	groupless := parts[0] == "api"
	parts = parts[1:]
	if !groupless {
		if len(parts) < 3 {
			return info
		}
		info.apiGroup, parts = parts[0], parts[1:]
	}
	info.isResource = true
	info.apiVersion, parts = parts[0], parts[1:]

	// The special verbs: /api/v1/watch/..., /api/v1/proxy/...
	if parts[0] == "watch" || parts[0] == "proxy" {
		if len(parts) < 2 {
			return info
		}
		info.verb, parts = parts[0], parts[1:]
	} else {
		switch r.Method {
		case http.MethodPost:
			info.verb = "create"
		case http.MethodGet, http.MethodHead:
			info.verb = "get"
		case http.MethodPut:
			info.verb = "update"
		case http.MethodPatch:
			info.verb = "patch"
		case http.MethodDelete:
			info.verb = "delete"
		default:
			info.verb = ""
		}
	}

	if parts[0] == "namespaces" {
		if len(parts) > 1 {
			info.namespace = parts[1]
			if len(parts) > 2 && !namespaceSubresources[parts[2]] {
				parts = parts[2:]
			}
		}
	}
	switch {
	case len(parts) >= 3 && info.verb != "proxy":
		info.subresource = parts[2]
		fallthrough
	case len(parts) >= 2:
		info.name = parts[1]
		fallthrough
	case len(parts) >= 1:
		info.resource = parts[0]
	}

	if info.name == "" && info.verb == "get" {
		q := r.URL.Query()
		info.verb = "list"
		if queryBool(q["watch"]) {
			info.verb = "watch"
		}
		// kubectl get pod x --watch lists with fieldSelector
		// metadata.name=x: the factory names the object then.
		if fs := q["fieldSelector"]; len(fs) > 0 {
			if sel, err := fields.ParseSelector(fs[0]); err == nil {
				if name, ok := sel.RequiresExactMatch("metadata.name"); ok && len(content.IsPathSegmentName(name)) == 0 {
					info.name = name
				}
			}
		}
	}
	if info.name == "" && info.verb == "delete" {
		info.verb = "deletecollection"
	}
	return info
}

// queryBool reads a boolean query parameter as apimachinery's
// Convert_Slice_string_To_bool: absent, "0" or "false" is false, anything
// else (even empty) true.
func queryBool(v []string) bool {
	return len(v) > 0 && v[0] != "0" && !strings.EqualFold(v[0], "false")
}

func splitPath(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// readOnlyVerbs are what GroupReadOnly may do to a resource.
var readOnlyVerbs = map[string]bool{"get": true, "list": true, "watch": true}

// readOnlySubresources are the subresources GroupReadOnly may read: a
// pod's log and any object's status. exec, attach, portforward and proxy
// are refused whatever the verb: over a WebSocket they are a GET.
var readOnlySubresources = map[string]bool{"": true, "log": true, "status": true}

// authorize decides a request as the RBAC roles the groups stand for
// would: GroupAdmin is cluster-admin; GroupReadOnly is Kubernetes' view
// role over every served resource (secrets included: see docs/api.md)
// with pods/log, plus GET of the non-resource paths but podboot's own
// (of those, only the OTA status);
// every authenticated user has system:discovery and
// system:public-info-viewer.
func authorize(u User, info requestInfo) bool {
	if slices.Contains(u.Groups, GroupAdmin) {
		return true
	}
	readOnly := slices.Contains(u.Groups, GroupReadOnly)
	if info.isResource {
		return readOnly && readOnlyVerbs[info.verb] && readOnlySubresources[info.subresource]
	}
	// HEAD reads what GET does (RBAC would want a "head" rule, which no
	// one writes; the anonymous public paths take both).
	if info.verb != "get" && info.verb != "head" {
		return false
	}
	if discoveryPath(info.path) {
		return true
	}
	if strings.HasPrefix(info.path, "/podboot/") || info.path == "/podboot" {
		return readOnly && readOnlyPodbootPath(info.path)
	}
	return readOnly
}

// discoveryPath matches the nonResourceURLs of kube-apiserver's
// system:discovery and system:public-info-viewer ClusterRoles, which every
// authenticated user has.
func discoveryPath(path string) bool {
	switch path {
	case "/api", "/apis", "/healthz", "/livez", "/readyz", "/openapi", "/version", "/version/":
		return true
	}
	for _, prefix := range []string{"/api/", "/apis/", "/openapi/"} {
		if strings.HasPrefix(path, prefix) {
			return true
		}
	}
	return false
}

// forbidden is kube-apiserver's 403 for a request the authorizer refused
// (responsewriters.ForbiddenStatusError with RBAC's empty reason):
//
//	pods "x" is forbidden: User "dash" cannot delete resource "pods" in API group "" in the namespace "default"
func forbidden(u User, info requestInfo) *apierrors.StatusError {
	gr := schema.GroupResource{Group: info.apiGroup, Resource: info.resource}
	return apierrors.NewForbidden(gr, info.name, fmt.Errorf("%s", htmlSanitizer.Replace(forbiddenMessage(u, info))))
}

// htmlSanitizer keeps a message from looking like HTML, as the API server
// does; quotes are fine.
var htmlSanitizer = strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;")

func forbiddenMessage(u User, info requestInfo) string {
	if !info.isResource {
		return fmt.Sprintf("User %q cannot %s path %q", u.Name, info.verb, info.path)
	}
	resource := info.resource
	if info.subresource != "" {
		resource += "/" + info.subresource
	}
	if info.namespace != "" {
		return fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q", u.Name, info.verb, resource, info.apiGroup, info.namespace)
	}
	return fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope", u.Name, info.verb, resource, info.apiGroup)
}
