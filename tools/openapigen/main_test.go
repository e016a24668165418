package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/integration"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestTrimV3(t *testing.T) {
	ref := func(name string) string { return `{"$ref": "#/components/schemas/` + name + `"}` }
	src := `{
	  "paths": {
	    "/api/v1/things": {
	      "get": {"responses": {"200": {"content": {"application/json": {"schema": ` + ref("ThingList") + `}}}}},
	      "post": {"requestBody": {"content": {"application/json": {"schema": ` + ref("Thing") + `}}}},
	      "parameters": [{"name": "pretty", "in": "query"}]
	    },
	    "/api/v1/others": {"get": {"responses": {"200": {"content": {"application/json": {"schema": ` + ref("Other") + `}}}}}}
	  },
	  "components": {"schemas": {
	    "ThingList": {"properties": {"items": {"items": ` + ref("Thing") + `}}},
	    "Thing": {"properties": {"spec": {"allOf": [` + ref("Spec") + `]}}},
	    "Spec": {"type": "object"},
	    "Other": {"properties": {"x": ` + ref("OtherOnly") + `}},
	    "OtherOnly": {"type": "string"}
	  }, "securitySchemes": {"BearerToken": {"type": "apiKey"}}}
	}`
	tests := []struct {
		name    string
		allowed map[string][]string
		want    string
		wantErr string
	}{
		{
			name:    "reads only",
			allowed: map[string][]string{"/api/v1/things": {"get"}},
			want: `{
			  "paths": {"/api/v1/things": {
			    "get": {"responses": {"200": {"content": {"application/json": {"schema": ` + ref("ThingList") + `}}}}},
			    "parameters": [{"name": "pretty", "in": "query"}]
			  }},
			  "components": {"schemas": {
			    "ThingList": {"properties": {"items": {"items": ` + ref("Thing") + `}}},
			    "Thing": {"properties": {"spec": {"allOf": [` + ref("Spec") + `]}}},
			    "Spec": {"type": "object"}
			  }, "securitySchemes": {"BearerToken": {"type": "apiKey"}}}
			}`,
		},
		{
			name: "a verb the source lacks is not added",
			allowed: map[string][]string{
				"/api/v1/things": {"get", "post", "delete"},
				"/api/v1/others": {"get"},
			},
			want: src,
		},
		{
			name:    "a served path missing from the source",
			allowed: map[string][]string{"/api/v1/things": {"get"}, "/api/v1/gone": {"get"}},
			wantErr: "path /api/v1/gone is not in the source",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := decode(t, src)
			err := trimV3(doc, tt.allowed)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("trimV3: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(decode(t, tt.want), doc); diff != "" {
				t.Errorf("trimmed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrimV2(t *testing.T) {
	src := `{
	  "paths": {
	    "/api/v1/things": {
	      "get": {"responses": {"200": {"schema": {"$ref": "#/definitions/ThingList"}}}},
	      "delete": {"parameters": [{"$ref": "#/parameters/body"}]},
	      "parameters": [{"$ref": "#/parameters/pretty"}]
	    },
	    "/apis/apps/v1/deployments": {"get": {"parameters": [{"$ref": "#/parameters/limit"}]}}
	  },
	  "definitions": {"ThingList": {"type": "object"}, "Deployment": {"type": "object"}},
	  "parameters": {"pretty": {"name": "pretty"}, "body": {"name": "body"}, "limit": {"name": "limit"}}
	}`
	doc := decode(t, src)
	if err := trimV2(doc, map[string][]string{"/api/v1/things": {"get"}}); err != nil {
		t.Fatal(err)
	}
	want := decode(t, `{
	  "paths": {"/api/v1/things": {
	    "get": {"responses": {"200": {"schema": {"$ref": "#/definitions/ThingList"}}}},
	    "parameters": [{"$ref": "#/parameters/pretty"}]
	  }},
	  "definitions": {"ThingList": {"type": "object"}},
	  "parameters": {"pretty": {"name": "pretty"}}
	}`)
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("trimmed (-want +got):\n%s", diff)
	}
}

func TestAllowedPaths(t *testing.T) {
	sv := served{prefix: "/api/v1", resources: []servedResource{
		{name: "namespaces", verbs: []string{opGet, opPost, opPut, opPatch, opDelete}},
		{name: "events", namespaced: true, verbs: []string{opGet}},
		{name: "pods/exec", namespaced: true, verbs: []string{opGet, opPost}},
	}}
	want := map[string][]string{
		"/api/v1/":                                           {opGet},
		"/api/v1/namespaces":                                 {opGet, opPost, opDelete},
		"/api/v1/namespaces/{name}":                          {opGet, opPut, opPatch, opDelete},
		"/api/v1/watch/namespaces":                           {opGet},
		"/api/v1/watch/namespaces/{name}":                    {opGet},
		"/api/v1/events":                                     {opGet},
		"/api/v1/watch/events":                               {opGet},
		"/api/v1/namespaces/{namespace}/events":              {opGet},
		"/api/v1/namespaces/{namespace}/events/{name}":       {opGet},
		"/api/v1/watch/namespaces/{namespace}/events":        {opGet},
		"/api/v1/watch/namespaces/{namespace}/events/{name}": {opGet},
		"/api/v1/namespaces/{namespace}/pods/{name}/exec":    {opGet, opPost},
	}
	if diff := cmp.Diff(want, sv.allowedPaths()); diff != "" {
		t.Errorf("allowedPaths (-want +got):\n%s", diff)
	}
}

// TestDocumentsUpToDate regenerates the documents from k8s.io/kubernetes
// in the module cache and compares them with the ones agent/api embeds:
// a change to the served table without `go generate ./agent/api` fails.
func TestDocumentsUpToDate(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	spec := filepath.Join(strings.TrimSpace(string(out)), "k8s.io", "kubernetes@v1.37.2", "api", "openapi-spec")
	if _, err := os.Stat(spec); err != nil {
		integration.Unavailable(t, "the source documents are not in the module cache (go mod download k8s.io/kubernetes@v1.37.2): %v", err)
	}
	dir := t.TempDir()
	cfg := config{spec: spec, out: dir, goFile: filepath.Join(dir, "openapi_documents.go"), pkg: "api"}
	if err := run(cfg); err != nil {
		t.Fatal(err)
	}
	embedded := filepath.Join("..", "..", "agent", "api")
	files := []string{"openapi_documents.go"}
	gz, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	if err != nil || len(gz) != 4 {
		t.Fatalf("generated %v (%v), want 4 documents", gz, err)
	}
	for _, f := range gz {
		files = append(files, filepath.Join("openapi", filepath.Base(f)))
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(embedded, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("agent/api/%s is not what tools/openapigen generates: run go generate ./agent/api", f)
		}
	}
}
