package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIsManifestFile(t *testing.T) {
	tests := map[string]bool{
		"web.yaml": true, "web.yml": true, "web.json": true, "WEB.YAML": true,
		"web.txt": false, "web": false, "README.md": false,
		".hidden.yaml": false, ".web.yaml.swp": false, ".web.yaml.swx": false, ".#web.yaml": false,
		"web.yaml~": false, "4913": false, "web.yaml.tmp": false, "web.tmp": false,
		"web.yaml.dpkg-new": false, "web.dpkg-old.yaml": false, "": false,
	}
	for name, want := range tests {
		if got := IsManifestFile(name); got != want {
			t.Errorf("IsManifestFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.yaml", podYAML("web", "nginx:1.29")+"---\n"+podYAML("db", "redis"))
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:1.28")) // same pod: a.yaml wins
	writeFile(t, dir, "c.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}`)
	writeFile(t, dir, "d.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n")
	for _, skipped := range []string{".e.yaml", ".f.yaml.swp", "g.yaml~", "4913", "h.yaml.tmp", "i.yaml.dpkg-new", "notes.txt"} {
		writeFile(t, dir, skipped, "this is not YAML: [")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.yaml"), "nested.yaml", podYAML("nested", "busybox")) // not recursive
	if err := os.Symlink("missing-target", filepath.Join(dir, "z.yaml")); err != nil {
		t.Fatal(err)
	}

	got := summarize(LoadDir(dir, testOpts))
	want := summary{
		Pods:       []string{"default/db", "default/web"},
		ConfigMaps: []string{"default/cfg"},
		Errors: []string{
			"b.yaml: document 0 (Pod default/web): duplicate Pod: already defined in a.yaml document 0, which wins",
			"d.yml: document 0 (ConfigMap default/cfg): duplicate ConfigMap: already defined in c.json document 0, which wins",
			"z.yaml: read manifest: open " + filepath.Join(dir, "z.yaml") + ": no such file or directory",
		},
		Fields: []string{"", "", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadDir mismatch (-want +got):\n%s", diff)
	}
	s := LoadDir(dir, testOpts)
	if img := s.Pods[1].Spec.Containers[0].Image; img != "nginx:1.28" {
		t.Errorf("duplicate: got image %q, want the first file's nginx:1.28", img)
	}
	if s.Errors[2].Index != -1 {
		t.Errorf("unreadable file: Index = %d, want -1", s.Errors[2].Index)
	}
}

func TestLoadDirMissing(t *testing.T) {
	s := LoadDir(filepath.Join(t.TempDir(), "nope"), testOpts)
	if len(s.Errors) != 1 || s.Errors[0].Index != -1 || !errors.Is(s.Errors[0].Err, fs.ErrNotExist) {
		t.Errorf("missing dir: got %+v", summarize(s))
	}
}

func TestDuplicatesInOneFile(t *testing.T) {
	s := Decode("x.yaml", []byte(podYAML("web", "a")+"---\n"+podYAML("web", "b")+
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"), testOpts)
	want := summary{
		Pods:       []string{"default/web"},
		ConfigMaps: []string{"default/web"}, // another kind: no clash
		Errors:     []string{"x.yaml: document 1 (Pod default/web): duplicate Pod: already defined in x.yaml document 0, which wins"},
		Fields:     []string{""},
	}
	if diff := cmp.Diff(want, summarize(s)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

var uuidV3 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-3[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUID(t *testing.T) {
	uid := func(file, doc string, opts Options) string {
		t.Helper()
		s := Decode(file, []byte(doc), opts)
		if len(s.Pods) != 1 {
			t.Fatalf("want one pod, got %+v", summarize(s))
		}
		p := s.Pods[0]
		if p.Annotations["kubernetes.io/config.hash"] != string(p.UID) {
			t.Errorf("config.hash %q != uid %q", p.Annotations["kubernetes.io/config.hash"], p.UID)
		}
		return string(p.UID)
	}
	base := uid("a.yaml", podYAML("web", "nginx"), testOpts)
	if !uuidV3.MatchString(base) {
		t.Errorf("UID %q is not a version 3 UUID", base)
	}
	tests := []struct {
		name string
		file string
		doc  string
		opts Options
		same bool
	}{
		{"same document", "a.yaml", podYAML("web", "nginx"), testOpts, true},
		{"moved to another file", "zzz.json", podYAML("web", "nginx"), testOpts, true},
		{"reformatted as flow YAML", "a.yaml", "{apiVersion: v1, kind: Pod, metadata: {name: web}, spec: {containers: [{name: main, image: nginx}]}}", testOpts, true},
		{"defaults written out", "a.yaml", podYAML("web", "nginx") + "    imagePullPolicy: Always\n  restartPolicy: Always\n", testOpts, true},
		{"status differs", "a.yaml", podYAML("web", "nginx") + "status: {phase: Failed}\n", testOpts, true},
		{"image changed", "a.yaml", podYAML("web", "nginx:1.29"), testOpts, false},
		// Metadata-only changes keep the pod (docs/manifests.md).
		{"label added", "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {a: b}}\nspec: {containers: [{name: main, image: nginx}]}\n", testOpts, true},
		{"annotation added", "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {a: b}}\nspec: {containers: [{name: main, image: nginx}]}\n", testOpts, true},
		{"managedFields added", "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, managedFields: [{manager: kubectl, operation: Update, apiVersion: v1, fieldsType: FieldsV1, fieldsV1: {f:metadata: {}}}]}\nspec: {containers: [{name: main, image: nginx}]}\n", testOpts, true},
		{"nodeName and the static toleration written out", "a.yaml", podYAML("web", "nginx") + "  nodeName: board-1\n  tolerations: [{operator: Exists, effect: NoExecute}]\n", testOpts, true},
		{"namespace changed", "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: other}\nspec: {containers: [{name: main, image: nginx}]}\n", testOpts, false},
		{"name changed", "a.yaml", podYAML("web2", "nginx"), testOpts, false},
		{"other node", "a.yaml", podYAML("web", "nginx"), Options{NodeName: "board-2"}, false},
	}
	for _, tt := range tests {
		got := uid(tt.file, tt.doc, tt.opts)
		if (got == base) != tt.same {
			t.Errorf("%s: uid %s, base %s, want same=%v", tt.name, got, base, tt.same)
		}
	}

	cm := func(data string) string {
		s := Decode("c.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {"+data+"}\n"), testOpts)
		return string(s.ConfigMaps[0].UID)
	}
	if a, b, c := cm("k: v"), cm("k: v"), cm("k: w"); a != b || a == c || !uuidV3.MatchString(a) {
		t.Errorf("ConfigMap UIDs: same content %s/%s, changed %s", a, b, c)
	}
}
