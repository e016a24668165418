package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeFormats(t *testing.T) {
	tests := []struct {
		name string
		file string // name passed to Decode
		data []byte
		want summary
	}{
		{"yaml block", "block.yaml", readTestdata(t, "decode/block.yaml"),
			summary{Pods: []string{"default/web"}}},
		{"yaml flow with comments and trailing commas", "flow.yaml", readTestdata(t, "decode/flow.yaml"),
			summary{Pods: []string{"apps/flow"}}},
		{"json object", "single.json", readTestdata(t, "decode/single.json"),
			summary{ConfigMaps: []string{"default/settings"}}},
		{"concatenated json objects", "concat.json", readTestdata(t, "decode/concat.json"),
			summary{Pods: []string{"apps/api"}, Secrets: []string{"apps/token"}, Namespaces: []string{"apps"}}},
		{"json List", "list.json", readTestdata(t, "decode/list.json"),
			summary{Pods: []string{"default/two"}, ConfigMaps: []string{"default/one"}}},
		{"yaml List", "list.yaml", readTestdata(t, "decode/list.yaml"),
			summary{Pods: []string{"default/worker"}, Secrets: []string{"default/creds"}}},
		{"multi-document yaml with empty documents", "multidoc.yaml", readTestdata(t, "decode/multidoc.yaml"),
			summary{Pods: []string{"edge/app"}, ConfigMaps: []string{"edge/cfg"}, Namespaces: []string{"edge"}}},
		{"json in a .yaml file", "x.yaml", readTestdata(t, "decode/concat.json"),
			summary{Pods: []string{"apps/api"}, Secrets: []string{"apps/token"}, Namespaces: []string{"apps"}}},
		{"byte order mark", "bom.yaml", append([]byte("\xef\xbb\xbf"), podYAML("bom", "busybox")...),
			summary{Pods: []string{"default/bom"}}},
		{"comments only", "empty.yaml", []byte("# nothing here\n---\n# nor here\n"), summary{}},
		{"empty file", "empty.yaml", nil, summary{}},
		{"yaml syntax error keeps later documents", "bad.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: web\n---\n" + podYAML("ok", "busybox")),
			summary{Pods: []string{"default/ok"},
				Errors: []string{`bad.yaml: document 0: invalid YAML: yaml: line 3: did not find expected ',' or '}'`},
				Fields: []string{""}}},
		{"truncated json", "bad.json", []byte(`{"apiVersion": "v1", "kind": "Pod"`),
			summary{Errors: []string{"bad.json: document 0: invalid JSON: unexpected EOF"}, Fields: []string{""}}},
		{"json syntax error after a good object", "bad.json", []byte(`{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}} {"x": ]`),
			summary{Namespaces: []string{"a"},
				Errors: []string{"bad.json: document 1: invalid JSON at byte 76: invalid character ']' looking for beginning of value"},
				Fields: []string{""}}},
		{"scalar document", "x.yaml", []byte("apiVers"),
			summary{Errors: []string{`x.yaml: document 0: document is not an object: "\"apiVers\""`}, Fields: []string{""}}},
		{"unsupported kind", "x.yaml", []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: prod}\n"),
			summary{Errors: []string{`x.yaml: document 0 (Deployment prod/web): unsupported kind "Deployment" (apiVersion "apps/v1"): podboot reads v1 Pod, ConfigMap, Secret, Namespace and List`},
				Fields: []string{"kind"}}},
		{"known kind in another apiVersion", "x.yaml", []byte("apiVersion: v2\nkind: Pod\nmetadata: {name: web}\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): unsupported kind "Pod" in apiVersion "v2": Pod is read from apiVersion v1`},
				Fields: []string{"apiVersion"}}},
		{"missing apiVersion", "x.yaml", []byte("kind: Pod\nmetadata: {name: web}\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): apiVersion: Required value: kind Pod needs apiVersion v1`},
				Fields: []string{"apiVersion"}}},
		{"missing kind", "x.yaml", []byte("apiVersion: v1\nmetadata: {name: web}\n"),
			summary{Errors: []string{`x.yaml: document 0 (web): kind: Required value: every document needs apiVersion and kind`},
				Fields: []string{"kind"}}},
		{"unknown field in yaml", "x.yaml", []byte(podYAML("web", "busybox") + "    imagee: x\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): strict decoding error: unknown field "spec.containers[0].imagee"`},
				Fields: []string{"spec.containers[0].imagee"}}},
		{"unknown field in json", "x.json", []byte(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "nmespace": "x"}}`),
			summary{Errors: []string{`x.json: document 0 (ConfigMap default/c): strict decoding error: unknown field "metadata.nmespace"`},
				Fields: []string{"metadata.nmespace"}}},
		{"duplicate field in yaml", "x.yaml", []byte(podYAML("web", "busybox") + "    image: nginx\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): strict decoding error: duplicate field "spec.containers[0].image"`},
				Fields: []string{"spec.containers[0].image"}}},
		{"duplicate field in json", "x.json", []byte(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "data": {"b": "2"}}`),
			summary{Errors: []string{`x.json: document 0 (ConfigMap default/c): strict decoding error: duplicate field "data"`},
				Fields: []string{"data"}}},
		{"several strict errors", "x.yaml", []byte(podYAML("web", "busybox") + "    foo: 1\n    bar: 2\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): strict decoding error: [unknown field "spec.containers[0].bar", unknown field "spec.containers[0].foo"]`},
				Fields: []string{"spec.containers[0].bar"}}},
		{"bad quantity", "x.yaml", []byte(podYAML("web", "busybox") + "    resources: {limits: {cpu: 1xyz}}\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): spec.containers[0].resources.limits[cpu]: Invalid value: "1xyz": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`},
				Fields: []string{"spec.containers[0].resources.limits[cpu]"}}},
		{"wrong type", "x.yaml", []byte(podYAML("web", "busybox") + "    ports: [{containerPort: \"80\"}]\n"),
			summary{Errors: []string{`x.yaml: document 0 (Pod default/web): spec.containers[0].ports[0].containerPort: Invalid value: "80": expected an integer, got string`},
				Fields: []string{"spec.containers[0].ports[0].containerPort"}}},
		{"status is ignored", "x.yaml", []byte(podYAML("web", "busybox") + "status:\n  phase: Running\n  podIP: 10.0.0.1\n"),
			summary{Pods: []string{"default/web"}}},
		{"error in a List item names the item", "x.yaml", []byte("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c}]}}\n"),
			summary{ConfigMaps: []string{"default/a"},
				Errors: []string{`x.yaml: document 0 (Pod default/b): items[1]: spec.containers[0].image: Required value`},
				Fields: []string{"items[1].spec.containers[0].image"}}},
		{"documents are counted without empty ones", "x.yaml", []byte("# header\n---\n" + podYAML("a", "busybox") + "---\n---\n" + podYAML("b", "")),
			summary{Pods: []string{"default/a"},
				Errors: []string{`x.yaml: document 1 (Pod default/b): spec.containers[0].image: Required value`},
				Fields: []string{"spec.containers[0].image"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(Decode(tt.file, tt.data, testOpts))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode(%s) mismatch (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestDecodeSecretStringData(t *testing.T) {
	s := Decode("s.yaml", []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: YQ==, b: Yg==}\nstringData: {b: B, c: C}\n"), testOpts)
	if len(s.Secrets) != 1 {
		t.Fatalf("want one secret, got %+v", summarize(s))
	}
	got := map[string]string{}
	for k, v := range s.Secrets[0].Data {
		got[k] = string(v)
	}
	if diff := cmp.Diff(map[string]string{"a": "a", "b": "B", "c": "C"}, got); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if s.Secrets[0].StringData != nil || s.Secrets[0].Type != "Opaque" {
		t.Errorf("stringData %v type %q, want nil and Opaque", s.Secrets[0].StringData, s.Secrets[0].Type)
	}
}

func TestDocumentErrorMessage(t *testing.T) {
	s := Decode("web.yaml", []byte(podYAML("other", "busybox")+"---\n"+podYAML("web", "")), testOpts)
	if len(s.Errors) != 1 {
		t.Fatalf("want 1 error, got %+v", summarize(s))
	}
	e := s.Errors[0]
	want := "web.yaml: document 1 (Pod default/web): spec.containers[0].image: Required value"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	got := DocumentError{File: e.File, Index: e.Index, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, Field: e.Field}
	wantFields := DocumentError{File: "web.yaml", Index: 1, Kind: "Pod", Namespace: "default", Name: "web", Field: "spec.containers[0].image"}
	if diff := cmp.Diff(wantFields, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.Unwrap().Error(), "Required value") {
		t.Errorf("Unwrap() = %v", e.Unwrap())
	}
}
