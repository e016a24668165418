package api

// The OpenAPI documents are Kubernetes' own (k8s.io/kubernetes
// api/openapi-spec at the version the API reports), trimmed by
// tools/openapigen to the paths and verbs this API serves and to the
// schemas they reference, and embedded gzipped. They are served as
// kube-openapi's handlers serve them (pkg/handler for v2, pkg/handler3 for
// v3): the same Accept negotiation, ETags, hash redirects and caching
// headers, so that kubectl's validation, explain and apply's patch
// computation find what they find on a cluster.

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/munnerz/goautoneg"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

//go:generate sh -c "go run ../../tools/openapigen -spec \"$(go env GOMODCACHE)/k8s.io/kubernetes@v1.37.2/api/openapi-spec\" -out openapi -go openapi_documents.go"

// openAPIFiles holds the documents, each gzipped: <gv>.json.gz for v3 (gv
// with "/" as "_"), swagger.json.gz and swagger.pb.gz for v2.
//
//go:embed openapi/*.gz
var openAPIFiles embed.FS

const (
	openAPIV2Path  = "/openapi/v2"
	openAPIV3Path  = "/openapi/v3"
	mimeJSON       = "application/json"
	mimeV2Protobuf = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	// mimeV2ProtobufDeprecated is what kubectl asks for; the answer
	// carries mimeV2Protobuf.
	mimeV2ProtobufDeprecated = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
)

// openAPIGroupVersions are the v3 documents served, named as the discovery
// document names them ("api/v1", "apis/<group>/<version>").
func openAPIGroupVersions() []string {
	return []string{"api/v1", "apis/" + coordinationGroup + "/v1"}
}

// routeOpenAPI serves /openapi/v2 and /openapi/v3, and the (empty) list of
// CustomResourceDefinitions kubectl's validation reads beside them; it
// reports whether path was one of them.
func (s *server) routeOpenAPI(w http.ResponseWriter, r *http.Request, path string) bool {
	switch {
	case path == crdListPath:
		serveCRDList(w, r)
	case path == openAPIV2Path:
		serveOpenAPIV2(w, r)
	case path == openAPIV3Path:
		serveOpenAPIV3Discovery(w, r)
	case strings.HasPrefix(path, openAPIV3Path+"/"):
		serveOpenAPIV3(w, r, strings.TrimPrefix(path, openAPIV3Path+"/"))
	default:
		return false
	}
	return true
}

// openAPIV3Discovery is handler3's OpenAPIV3Discovery: each group
// version's document with its ETag as the hash query, so that a client
// caches a document until the hash changes.
type openAPIV3Discovery struct {
	Paths map[string]openAPIV3DiscoveryGroupVersion `json:"paths"`
}

type openAPIV3DiscoveryGroupVersion struct {
	ServerRelativeURL string `json:"serverRelativeURL"`
}

func openAPIV3URL(gv string) string {
	u := url.URL{Path: openAPIV3Path + "/" + gv, RawQuery: url.Values{"hash": {openAPIV3ETag(gv)}}.Encode()}
	return u.String()
}

func serveOpenAPIV3Discovery(w http.ResponseWriter, r *http.Request) {
	d := openAPIV3Discovery{Paths: map[string]openAPIV3DiscoveryGroupVersion{}}
	for _, gv := range openAPIGroupVersions() {
		d.Paths[gv] = openAPIV3DiscoveryGroupVersion{ServerRelativeURL: openAPIV3URL(gv)}
	}
	data, err := json.Marshal(d)
	if err != nil {
		writeStatus(w, fmt.Errorf("encode the OpenAPI v3 discovery document: %w", err))
		return
	}
	w.Header().Set("Etag", strconv.Quote(fmt.Sprintf("%X", sha512.Sum512(data))))
	w.Header().Set("Content-Type", mimeJSON)
	http.ServeContent(w, r, openAPIV3Path, time.Time{}, bytes.NewReader(data))
}

// serveOpenAPIV3 serves one group version's document in JSON, the only
// form kubectl asks for (handler3 also converts to protobuf).
func serveOpenAPIV3(w http.ResponseWriter, r *http.Request, gv string) {
	etag := openAPIV3ETag(gv)
	if etag == "" {
		writeStatus(w, pathNotFound())
		return
	}
	w.Header().Add("Vary", "Accept")
	if negotiateOpenAPI(r.Header.Get("Accept"), mimeJSON) == "" {
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	w.Header().Set("Etag", strconv.Quote(etag))
	if hash := r.URL.Query().Get("hash"); hash != "" {
		if hash != etag {
			// A client holding an old discovery document is sent to
			// the current one.
			http.Redirect(w, r, openAPIV3URL(gv), http.StatusMovedPermanently)
			return
		}
		// The hash names this content for good: cache it for a year.
		w.Header().Set("Cache-Control", "public, immutable")
		w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).Format(time.RFC1123))
	}
	serveGzipped(w, r, strings.ReplaceAll(gv, "/", "_")+".json.gz")
}

// serveOpenAPIV2 serves the swagger document in JSON or, as kubectl asks
// for it, protobuf.
func serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	var file string
	contentType := negotiateOpenAPI(r.Header.Get("Accept"), mimeJSON, mimeV2Protobuf, mimeV2ProtobufDeprecated)
	switch contentType {
	case mimeJSON:
		file = "swagger.json.gz"
	case mimeV2Protobuf, mimeV2ProtobufDeprecated:
		file, contentType = "swagger.pb.gz", mimeV2Protobuf
	default:
		w.WriteHeader(http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Etag", strconv.Quote(openAPIV2ETag))
	serveGzipped(w, r, file)
}

// negotiateOpenAPI returns the first of offers that the Accept header's
// clauses, in order of preference, take ("" = none), as kube-openapi's
// handlers choose.
func negotiateOpenAPI(accept string, offers ...string) string {
	if accept == "" {
		accept = "*/*"
	}
	for _, clause := range goautoneg.ParseAccept(accept) {
		for _, offer := range offers {
			typ, sub, _ := strings.Cut(offer, "/")
			if (clause.Type == typ || clause.Type == "*") && (clause.SubType == sub || clause.SubType == "*") {
				return offer
			}
		}
	}
	return ""
}

// serveGzipped serves an embedded document as it is stored, gzipped, to a
// client that accepts gzip (kube-openapi's handler compresses too), else
// decompressed. Conditional and range requests are http.ServeContent's.
func serveGzipped(w http.ResponseWriter, r *http.Request, file string) {
	gz, err := openAPIFiles.ReadFile("openapi/" + file)
	if err != nil {
		writeStatus(w, fmt.Errorf("read OpenAPI document %s: %w", file, err))
		return
	}
	w.Header().Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(gz))
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		writeStatus(w, fmt.Errorf("decompress OpenAPI document %s: %w", file, err))
		return
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		writeStatus(w, fmt.Errorf("decompress OpenAPI document %s: %w", file, err))
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// acceptsGzip reads an Accept-Encoding header: gzip or *, not with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

// crdListPath is where kubectl looks for CustomResourceDefinitions.
const crdListPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

// serveCRDList answers the list of CustomResourceDefinitions: there are
// none. kubectl's validation asks for it when the OpenAPI documents have
// no PATCH operation for a kind (the node, its events and its lease are
// read-only here), to tell a custom resource from a built-in one; a 404
// would fail the command with "failed to check CRD". With the empty list
// kubectl validates the object against the v2 document and the write is
// then refused as the API server would refuse an unsupported verb.
func serveCRDList(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, apierrors.NewMethodNotSupported(schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}, strings.ToLower(r.Method)))
		return
	}
	writeJSON(w, &objectList{
		TypeMeta: metav1.TypeMeta{Kind: "CustomResourceDefinitionList", APIVersion: "apiextensions.k8s.io/v1"},
		Items:    []runtime.Object{},
	})
}
