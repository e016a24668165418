// Command openapigen derives the OpenAPI documents the pod agent serves
// (agent/api/openapi) from the ones Kubernetes publishes with its source,
// k8s.io/kubernetes/api/openapi-spec: the v3 documents of core v1 and
// coordination.k8s.io/v1 and the v2 swagger.json, trimmed to the paths and
// verbs podboot serves and to the schemas those paths reference. Each
// document is written compact and gzipped, the v2 one also as the protobuf
// kubectl asks for, with the ETags kube-apiserver would compute for them
// in a generated Go file.
//
// agent/api runs it through go generate:
//
//	go mod download k8s.io/kubernetes@v1.37.2
//	go generate ./agent/api
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.spec, "spec", "", "k8s.io/kubernetes's api/openapi-spec directory (in the module cache after `go mod download k8s.io/kubernetes@v1.37.2`)")
	flag.StringVar(&cfg.out, "out", "openapi", "directory the documents are written to")
	flag.StringVar(&cfg.goFile, "go", "openapi_documents.go", "Go file the documents' ETags are written to")
	flag.StringVar(&cfg.pkg, "package", "api", "package of the Go file")
	flag.Parse()
	if err := run(cfg); err != nil {
		log.Fatalf("openapigen: %v", err)
	}
}

type config struct {
	spec, out, goFile, pkg string
}

// Verbs, as the documents' operations name them.
const (
	opGet    = "get"
	opPost   = "post"
	opPut    = "put"
	opPatch  = "patch"
	opDelete = "delete"
)

// served lists the resources of one group version the agent serves, with
// the verbs it answers; subresources are "pods/log" and the like.
type served struct {
	prefix    string // "/api/v1" or "/apis/<group>/v1"
	v3File    string // the group version's document in openapi-spec/v3
	resources []servedResource
}

type servedResource struct {
	name       string
	namespaced bool
	verbs      []string
}

// servedGroupVersions is what agent/api routes: writes
// (agent/api/write.go) on pods, namespaces, configmaps and secrets; reads
// only on the node, its events and its lease, and the empty quota and
// limit range collections kubectl describe namespace lists.
func servedGroupVersions() map[string]served {
	readOnly := []string{opGet}
	readWrite := []string{opGet, opPost, opPut, opPatch, opDelete}
	streaming := []string{opGet, opPost} // a WebSocket is a GET, SPDY a POST
	return map[string]served{
		"api/v1": {prefix: "/api/v1", v3File: "api__v1_openapi.json", resources: []servedResource{
			{name: "pods", namespaced: true, verbs: readWrite},
			{name: "pods/log", namespaced: true, verbs: readOnly},
			{name: "pods/exec", namespaced: true, verbs: streaming},
			{name: "pods/attach", namespaced: true, verbs: streaming},
			{name: "pods/portforward", namespaced: true, verbs: streaming},
			{name: "namespaces", verbs: readWrite},
			{name: "nodes", verbs: readOnly},
			{name: "events", namespaced: true, verbs: readOnly},
			{name: "configmaps", namespaced: true, verbs: readWrite},
			{name: "secrets", namespaced: true, verbs: readWrite},
			{name: "resourcequotas", namespaced: true, verbs: readOnly},
			{name: "limitranges", namespaced: true, verbs: readOnly},
		}},
		"apis/coordination.k8s.io/v1": {prefix: "/apis/coordination.k8s.io/v1", v3File: "apis__coordination.k8s.io__v1_openapi.json", resources: []servedResource{
			{name: "leases", namespaced: true, verbs: readOnly},
		}},
	}
}

// allowedPaths returns every path of sv with the verbs allowed on it.
// A collection's delete is deletecollection; watch paths are GETs.
func (sv served) allowedPaths() map[string][]string {
	readOnly := []string{opGet}
	paths := map[string][]string{sv.prefix + "/": readOnly}
	for _, r := range sv.resources {
		name, sub, isSub := strings.Cut(r.name, "/")
		if isSub {
			item := sv.prefix + "/namespaces/{namespace}/" + name + "/{name}/" + sub
			if !r.namespaced {
				item = sv.prefix + "/" + name + "/{name}/" + sub
			}
			paths[item] = r.verbs
			continue
		}
		if r.namespaced {
			paths[sv.prefix+"/"+name] = readOnly // list across namespaces
			paths[sv.prefix+"/watch/"+name] = readOnly
			paths[sv.prefix+"/namespaces/{namespace}/"+name] = collectionVerbs(r.verbs)
			paths[sv.prefix+"/namespaces/{namespace}/"+name+"/{name}"] = itemVerbs(r.verbs)
			paths[sv.prefix+"/watch/namespaces/{namespace}/"+name] = readOnly
			paths[sv.prefix+"/watch/namespaces/{namespace}/"+name+"/{name}"] = readOnly
			continue
		}
		paths[sv.prefix+"/"+name] = collectionVerbs(r.verbs)
		paths[sv.prefix+"/"+name+"/{name}"] = itemVerbs(r.verbs)
		paths[sv.prefix+"/watch/"+name] = readOnly
		paths[sv.prefix+"/watch/"+name+"/{name}"] = readOnly
	}
	return paths
}

// collectionVerbs: list, create and deletecollection.
func collectionVerbs(verbs []string) []string {
	var out []string
	for _, v := range verbs {
		if v == opGet || v == opPost || v == opDelete {
			out = append(out, v)
		}
	}
	return out
}

// itemVerbs: get, replace, patch and delete.
func itemVerbs(verbs []string) []string {
	var out []string
	for _, v := range verbs {
		if v != opPost {
			out = append(out, v)
		}
	}
	return out
}

func run(cfg config) error {
	if cfg.spec == "" {
		return fmt.Errorf("-spec is required: run `go mod download k8s.io/kubernetes@v1.37.2` and pass $(go env GOMODCACHE)/k8s.io/kubernetes@v1.37.2/api/openapi-spec")
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", cfg.out, err)
	}
	groupVersions := servedGroupVersions()
	etags := map[string]string{}
	var names []string
	for gv := range groupVersions {
		names = append(names, gv)
	}
	sort.Strings(names)
	for _, gv := range names {
		src := filepath.Join(cfg.spec, "v3", groupVersions[gv].v3File)
		doc, err := readJSON(src)
		if err != nil {
			return err
		}
		if err := trimV3(doc, groupVersions[gv].allowedPaths()); err != nil {
			return fmt.Errorf("trim %s: %w", src, err)
		}
		data, err := marshal(doc)
		if err != nil {
			return fmt.Errorf("encode %s: %w", gv, err)
		}
		file := strings.ReplaceAll(gv, "/", "_") + ".json.gz"
		if err := writeGzip(filepath.Join(cfg.out, file), data); err != nil {
			return err
		}
		etags[gv] = etag(data)
	}

	src := filepath.Join(cfg.spec, "swagger.json")
	doc, err := readJSON(src)
	if err != nil {
		return err
	}
	allowed := map[string][]string{}
	for _, gv := range names {
		for p, verbs := range groupVersions[gv].allowedPaths() {
			allowed[p] = verbs
		}
	}
	if err := trimV2(doc, allowed); err != nil {
		return fmt.Errorf("trim %s: %w", src, err)
	}
	data, err := marshal(doc)
	if err != nil {
		return fmt.Errorf("encode swagger: %w", err)
	}
	if err := writeGzip(filepath.Join(cfg.out, "swagger.json.gz"), data); err != nil {
		return err
	}
	// kube-openapi's handler converts the JSON with gnostic, as here, and
	// gives both forms the JSON's ETag.
	v2, err := openapi_v2.ParseDocument(data)
	if err != nil {
		return fmt.Errorf("parse trimmed swagger: %w", err)
	}
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(v2)
	if err != nil {
		return fmt.Errorf("encode swagger as protobuf: %w", err)
	}
	if err := writeGzip(filepath.Join(cfg.out, "swagger.pb.gz"), pb); err != nil {
		return err
	}
	etags["v2"] = etag(data)
	return writeGo(cfg, names, etags)
}

func readJSON(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read OpenAPI document: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return doc, nil
}

// marshal encodes compactly, as the API server serves its documents.
func marshal(doc map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// etag is kube-openapi's computeETag.
func etag(data []byte) string {
	return fmt.Sprintf("%X", sha512.Sum512(data))
}

// trimPaths keeps the allowed paths and verbs of doc's "paths".
func trimPaths(paths map[string]any, allowed map[string][]string) error {
	for p, v := range paths {
		verbs, ok := allowed[p]
		if !ok {
			delete(paths, p)
			continue
		}
		item := v.(map[string]any)
		keep := map[string]bool{}
		// Kubernetes has no deletecollection of namespaces: a verb
		// the source lacks is not added.
		for _, verb := range verbs {
			keep[verb] = true
		}
		for k := range item {
			if isOperation(k) && !keep[k] {
				delete(item, k)
			}
		}
	}
	return nil
}

func isOperation(k string) bool {
	switch k {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

func trimV3(doc map[string]any, allowed map[string][]string) error {
	paths := doc["paths"].(map[string]any)
	if err := trimPaths(paths, allowed); err != nil {
		return err
	}
	// A served path missing from the source means the source moved on
	// and the table above needs a look.
	for p := range allowed {
		if _, ok := paths[p]; !ok {
			return fmt.Errorf("path %s is not in the source", p)
		}
	}
	components := doc["components"].(map[string]any)
	schemas := components["schemas"].(map[string]any)
	keep := closure(paths, schemas, "#/components/schemas/")
	for name := range schemas {
		if !keep[name] {
			delete(schemas, name)
		}
	}
	return nil
}

func trimV2(doc map[string]any, allowed map[string][]string) error {
	paths := doc["paths"].(map[string]any)
	if err := trimPaths(paths, allowed); err != nil {
		return err
	}
	for p := range allowed {
		if _, ok := paths[p]; !ok {
			return fmt.Errorf("path %s is not in swagger.json", p)
		}
	}
	definitions := doc["definitions"].(map[string]any)
	keep := closure(paths, definitions, "#/definitions/")
	for name := range definitions {
		if !keep[name] {
			delete(definitions, name)
		}
	}
	// Shared parameters are referenced from paths only.
	parameters := doc["parameters"].(map[string]any)
	used := map[string]bool{}
	walkRefs(paths, func(ref string) {
		if name, ok := strings.CutPrefix(ref, "#/parameters/"); ok {
			used[name] = true
		}
	})
	for name := range parameters {
		if !used[name] {
			delete(parameters, name)
		}
	}
	return nil
}

// closure returns the names of the schemas reachable from root through
// $refs with the given prefix.
func closure(root any, schemas map[string]any, prefix string) map[string]bool {
	keep := map[string]bool{}
	var queue []string
	visit := func(ref string) {
		if name, ok := strings.CutPrefix(ref, prefix); ok && !keep[name] {
			keep[name] = true
			queue = append(queue, name)
		}
	}
	walkRefs(root, visit)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		walkRefs(schemas[name], visit)
	}
	return keep
}

func walkRefs(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				fn(s)
				continue
			}
			walkRefs(e, fn)
		}
	case []any:
		for _, e := range v {
			walkRefs(e, fn)
		}
	}
}

func writeGzip(path string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("compress %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeGo(cfg config, names []string, etags map[string]string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by tools/openapigen; DO NOT EDIT.\n\npackage %s\n\n", cfg.pkg)
	b.WriteString("// openAPIV3ETag returns the ETag (kube-openapi's: SHA-512 of the\n// uncompressed JSON, upper-case hex) of a group version's v3 document.\n")
	b.WriteString("func openAPIV3ETag(gv string) string {\n\tswitch gv {\n")
	for _, gv := range names {
		fmt.Fprintf(&b, "\tcase %q:\n\t\treturn %q\n", gv, etags[gv])
	}
	b.WriteString("\t}\n\treturn \"\"\n}\n\n")
	b.WriteString("// openAPIV2ETag is the ETag of the v2 document, both as JSON and as protobuf.\n")
	fmt.Fprintf(&b, "const openAPIV2ETag = %q\n", etags["v2"])
	src, err := format.Source(b.Bytes())
	if err != nil {
		return fmt.Errorf("format %s: %w", cfg.goFile, err)
	}
	if err := os.WriteFile(cfg.goFile, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", cfg.goFile, err)
	}
	return nil
}
