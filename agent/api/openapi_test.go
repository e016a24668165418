package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

// openAPIGet serves one GET through the API with the given headers.
func openAPIGet(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func quotedETag(data []byte) string {
	return strconv.Quote(fmt.Sprintf("%X", sha512.Sum512(data)))
}

func TestOpenAPIV3Discovery(t *testing.T) {
	s := newServer(store.New(time.Now), fakeLogs{}, Options{})
	w := openAPIGet(t, s, "/openapi/v3")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /openapi/v3: %d %s", w.Code, w.Body)
	}
	var got openAPIV3Discovery
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode /openapi/v3: %v\n%s", err, w.Body)
	}
	want := openAPIV3Discovery{Paths: map[string]openAPIV3DiscoveryGroupVersion{
		"api/v1":                      {ServerRelativeURL: "/openapi/v3/api/v1?hash=" + openAPIV3ETag("api/v1")},
		"apis/coordination.k8s.io/v1": {ServerRelativeURL: "/openapi/v3/apis/coordination.k8s.io/v1?hash=" + openAPIV3ETag("apis/coordination.k8s.io/v1")},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/openapi/v3 (-want +got):\n%s", diff)
	}
	if got, want := w.Header().Get("Etag"), quotedETag(w.Body.Bytes()); got != want {
		t.Errorf("Etag = %s, want %s", got, want)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	// Each document's hash is its content's: a client caching by hash
	// can never hold a stale document.
	for gv := range want.Paths {
		w := openAPIGet(t, s, "/openapi/v3/"+gv)
		if got, want := w.Header().Get("Etag"), quotedETag(w.Body.Bytes()); got != want {
			t.Errorf("%s: Etag %s is not the document's hash %s", gv, got, want)
		}
	}
}

func TestOpenAPIHeaders(t *testing.T) {
	s := newServer(store.New(time.Now), fakeLogs{}, Options{})
	v1ETag := openAPIV3ETag("api/v1")
	tests := []struct {
		name    string
		target  string
		header  []string
		code    int
		headers map[string]string // "" = must be absent
	}{
		{
			name: "v3 with its hash is immutable", target: "/openapi/v3/api/v1?hash=" + v1ETag, header: []string{"Accept", "application/json"},
			code: http.StatusOK,
			headers: map[string]string{
				"Content-Type": "application/json", "Etag": strconv.Quote(v1ETag), "Cache-Control": "public, immutable", "Vary": "Accept",
			},
		},
		{
			name: "v3 without a hash", target: "/openapi/v3/api/v1",
			code:    http.StatusOK,
			headers: map[string]string{"Content-Type": "application/json", "Etag": strconv.Quote(v1ETag), "Cache-Control": "", "Expires": ""},
		},
		{
			name: "v3 with a stale hash is redirected", target: "/openapi/v3/api/v1?hash=0123",
			code:    http.StatusMovedPermanently,
			headers: map[string]string{"Location": "/openapi/v3/api/v1?hash=" + v1ETag},
		},
		{
			name: "v3 revalidated", target: "/openapi/v3/api/v1", header: []string{"If-None-Match", strconv.Quote(v1ETag)},
			code: http.StatusNotModified,
		},
		{
			name: "v3 in protobuf is not served", target: "/openapi/v3/api/v1", header: []string{"Accept", "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"},
			code: http.StatusNotAcceptable,
		},
		{
			name: "v3 protobuf preferred, JSON taken", target: "/openapi/v3/api/v1", header: []string{"Accept", "application/com.github.proto-openapi.spec.v3.v1.0+protobuf, application/json;q=0.5"},
			code:    http.StatusOK,
			headers: map[string]string{"Content-Type": "application/json"},
		},
		{
			name: "v3 of a group not served", target: "/openapi/v3/apis/apps/v1",
			code: http.StatusNotFound,
		},
		{
			name: "v3 gzipped", target: "/openapi/v3/apis/coordination.k8s.io/v1", header: []string{"Accept-Encoding", "gzip"},
			code:    http.StatusOK,
			headers: map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/json"},
		},
		{
			name: "v3 gzip refused", target: "/openapi/v3/apis/coordination.k8s.io/v1", header: []string{"Accept-Encoding", "gzip;q=0, identity"},
			code:    http.StatusOK,
			headers: map[string]string{"Content-Encoding": ""},
		},
		{
			name: "v2 as kubectl asks for it", target: "/openapi/v2", header: []string{"Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
			code: http.StatusOK,
			headers: map[string]string{
				"Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", "Etag": strconv.Quote(openAPIV2ETag), "Vary": "Accept",
			},
		},
		{
			name: "v2 by default", target: "/openapi/v2",
			code:    http.StatusOK,
			headers: map[string]string{"Content-Type": "application/json", "Etag": strconv.Quote(openAPIV2ETag)},
		},
		{
			name: "v2 in YAML", target: "/openapi/v2", header: []string{"Accept", "application/yaml"},
			code: http.StatusNotAcceptable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := openAPIGet(t, s, tt.target, tt.header...)
			if w.Code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tt.target, w.Code, tt.code, w.Body)
			}
			for k, want := range tt.headers {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tt.headers["Cache-Control"] != "" {
				exp, err := time.Parse(time.RFC1123, w.Header().Get("Expires"))
				if err != nil || time.Until(exp) < 364*24*time.Hour {
					t.Errorf("Expires = %q (%v), want a year from now", w.Header().Get("Expires"), err)
				}
			}
		})
	}
}

// TestOpenAPIEncodings checks that every form of a document has the same
// content: gzipped or not, and v2's JSON and protobuf.
func TestOpenAPIEncodings(t *testing.T) {
	s := newServer(store.New(time.Now), fakeLogs{}, Options{})
	for _, target := range []string{"/openapi/v3/api/v1", "/openapi/v3/apis/coordination.k8s.io/v1", "/openapi/v2"} {
		plain := openAPIGet(t, s, target).Body.Bytes()
		gz := openAPIGet(t, s, target, "Accept-Encoding", "gzip").Body.Bytes()
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("%s: gzipped answer: %v", target, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: gzipped answer: %v", target, err)
		}
		if !bytes.Equal(plain, unzipped) {
			t.Errorf("%s: the gzipped answer differs from the plain one", target)
		}
		if !json.Valid(plain) {
			t.Errorf("%s: not JSON", target)
		}
	}
	jsonDoc, err := openapi_v2.ParseDocument(openAPIGet(t, s, "/openapi/v2").Body.Bytes())
	if err != nil {
		t.Fatalf("parse v2 JSON: %v", err)
	}
	pb := openAPIGet(t, s, "/openapi/v2", "Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf").Body.Bytes()
	var pbDoc openapi_v2.Document
	if err := proto.Unmarshal(pb, &pbDoc); err != nil {
		t.Fatalf("decode v2 protobuf: %v", err)
	}
	if !proto.Equal(jsonDoc, &pbDoc) {
		t.Error("v2: the protobuf document differs from the JSON one")
	}
}

// openAPIOperations lists every "METHOD path" of the served documents.
func openAPIOperations(t *testing.T, s http.Handler) []string {
	t.Helper()
	var ops []string
	for _, gv := range openAPIGroupVersions() {
		w := openAPIGet(t, s, "/openapi/v3/"+gv)
		var doc struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("decode %s: %v", gv, err)
		}
		for path, item := range doc.Paths {
			for op := range item {
				if op != "parameters" {
					ops = append(ops, strings.ToUpper(op)+" "+path)
				}
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// TestOpenAPIVerbs pins the operations the documents list to what the API
// serves: writes on pods, namespaces, configmaps and secrets, reads only
// on the rest. kubectl reads a PATCH operation's fieldValidation parameter
// to leave validation to the server, so a listed write that is not served
// (or the reverse) changes what kubectl does.
func TestOpenAPIVerbs(t *testing.T) {
	s := newServer(store.New(time.Now), fakeLogs{}, Options{})
	var want []string
	add := func(methods, path string) {
		for _, m := range strings.Fields(methods) {
			want = append(want, m+" "+path)
		}
	}
	for _, prefix := range []string{"/api/v1", "/apis/coordination.k8s.io/v1"} {
		add("GET", prefix+"/")
	}
	namespaced := map[string]bool{"pods": true, "configmaps": true, "secrets": true, "events": false, "resourcequotas": false, "limitranges": false}
	for name, writable := range namespaced {
		add("GET", "/api/v1/"+name)
		add("GET", "/api/v1/watch/"+name)
		add("GET", "/api/v1/watch/namespaces/{namespace}/"+name)
		add("GET", "/api/v1/watch/namespaces/{namespace}/"+name+"/{name}")
		if writable {
			add("GET POST DELETE", "/api/v1/namespaces/{namespace}/"+name)
			add("GET PUT PATCH DELETE", "/api/v1/namespaces/{namespace}/"+name+"/{name}")
		} else {
			add("GET", "/api/v1/namespaces/{namespace}/"+name)
			add("GET", "/api/v1/namespaces/{namespace}/"+name+"/{name}")
		}
	}
	add("GET", "/api/v1/namespaces/{namespace}/pods/{name}/log")
	for _, sub := range []string{"exec", "attach", "portforward"} {
		add("GET POST", "/api/v1/namespaces/{namespace}/pods/{name}/"+sub)
	}
	// Kubernetes has no deletecollection of namespaces.
	add("GET POST", "/api/v1/namespaces")
	add("GET PUT PATCH DELETE", "/api/v1/namespaces/{name}")
	add("GET", "/api/v1/watch/namespaces")
	add("GET", "/api/v1/watch/namespaces/{name}")
	add("GET", "/api/v1/nodes")
	add("GET", "/api/v1/nodes/{name}")
	add("GET", "/api/v1/watch/nodes")
	add("GET", "/api/v1/watch/nodes/{name}")
	lease := "/apis/coordination.k8s.io/v1"
	add("GET", lease+"/leases")
	add("GET", lease+"/watch/leases")
	add("GET", lease+"/namespaces/{namespace}/leases")
	add("GET", lease+"/namespaces/{namespace}/leases/{name}")
	add("GET", lease+"/watch/namespaces/{namespace}/leases")
	add("GET", lease+"/watch/namespaces/{namespace}/leases/{name}")
	slices.Sort(want)
	if diff := cmp.Diff(want, openAPIOperations(t, s)); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
}

// TestOpenAPIOperationsRouted sends every listed operation to the API:
// none may meet the answer for a path the API does not serve.
func TestOpenAPIOperationsRouted(t *testing.T) {
	s := newServer(store.New(time.Now), fakeLogs{}, Options{})
	notServed := toStatus(pathNotFound()).Message
	for _, op := range openAPIOperations(t, s) {
		method, path, _ := strings.Cut(op, " ")
		target := strings.NewReplacer("{namespace}", "default", "{name}", "x").Replace(path)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		r := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader("{}"))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r) // a watch ends with ctx
		cancel()
		var status metav1.Status
		_ = json.Unmarshal(w.Body.Bytes(), &status) // not every answer is a Status
		if w.Code == http.StatusNotFound && status.Message == notServed {
			t.Errorf("%s %s: the API does not serve it", method, target)
		}
	}
}

// discoveryFlash turns the write verbs on in discovery; nothing is written.
type discoveryFlash struct{ Flash }

// TestOpenAPIMatchesDiscovery checks that the verbs the documents give each
// resource are the ones discovery lists, mapped as the API server's
// installer maps them to operations.
func TestOpenAPIMatchesDiscovery(t *testing.T) {
	s := newServer(store.New(time.Now), fakeLogs{}, Options{Flash: discoveryFlash{}})
	fromOpenAPI := map[string][]string{} // "group/resource" → verbs
	for _, op := range openAPIOperations(t, s) {
		method, path, _ := strings.Cut(op, " ")
		prefix, group := "/api/v1/", ""
		if rest, ok := strings.CutPrefix(path, "/apis/"); ok {
			group, _, _ = strings.Cut(rest, "/")
			prefix = "/apis/" + group + "/v1/"
		}
		rest := strings.TrimPrefix(path, prefix)
		watch := false
		if r, ok := strings.CutPrefix(rest, "watch/"); ok {
			rest, watch = r, true
		}
		if r, ok := strings.CutPrefix(rest, "namespaces/{namespace}/"); ok {
			rest = r
		}
		parts := strings.Split(rest, "/")
		if parts[0] == "" {
			continue // the group version's resource list
		}
		name, item := parts[0], len(parts) > 1
		if len(parts) == 3 {
			name += "/" + parts[2]
		}
		var verb string
		switch {
		case watch:
			verb = "watch"
		case method == "GET" && item:
			verb = "get"
		case method == "GET":
			verb = "list"
		case method == "POST":
			verb = "create" // of the collection, or exec, attach, portforward
		case method == "PUT":
			verb = "update"
		case method == "PATCH":
			verb = "patch"
		case method == "DELETE" && item:
			verb = "delete"
		case method == "DELETE":
			verb = "deletecollection"
		}
		key := group + "/" + name
		if !slices.Contains(fromOpenAPI[key], verb) {
			fromOpenAPI[key] = append(fromOpenAPI[key], verb)
		}
	}
	for _, gv := range []string{"/api/v1", "/apis/coordination.k8s.io/v1"} {
		w := openAPIGet(t, s, gv)
		var list metav1.APIResourceList
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatalf("decode %s: %v", gv, err)
		}
		group, _, _ := strings.Cut(list.GroupVersion, "/")
		if list.GroupVersion == "v1" {
			group = ""
		}
		for _, res := range list.APIResources {
			key := group + "/" + res.Name
			got := fromOpenAPI[key]
			slices.Sort(got)
			want := slices.Sorted(slices.Values(res.Verbs))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: verbs in the OpenAPI documents differ from discovery's (-discovery +openapi):\n%s", key, diff)
			}
			delete(fromOpenAPI, key)
		}
	}
	for key, verbs := range fromOpenAPI {
		t.Logf("%s: %v in the OpenAPI documents, not in discovery", key, verbs)
	}
}
