package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// unionSummary is what a union holds, each object as
// "namespace/name=<what tells own's from fleet's> (fleet)".
type unionSummary struct {
	Pods, ConfigMaps, Secrets, Namespaces []string
	Errors                                []string
	Collisions                            []string
}

func summarizeUnion(s *Set, collisions []ObjectKey) unionSummary {
	var sum unionSummary
	mark := func(k ObjectKey) string {
		if s.FromFleet(k) {
			return " (fleet)"
		}
		return ""
	}
	for _, p := range s.Pods {
		sum.Pods = append(sum.Pods, p.Namespace+"/"+p.Name+"="+p.Spec.Containers[0].Image+mark(ObjectKey{"Pod", p.Namespace, p.Name}))
	}
	for _, c := range s.ConfigMaps {
		sum.ConfigMaps = append(sum.ConfigMaps, c.Namespace+"/"+c.Name+"="+c.Data["v"]+mark(ObjectKey{"ConfigMap", c.Namespace, c.Name}))
	}
	for _, c := range s.Secrets {
		sum.Secrets = append(sum.Secrets, c.Namespace+"/"+c.Name+"="+c.StringData["v"]+string(c.Data["v"])+mark(ObjectKey{"Secret", c.Namespace, c.Name}))
	}
	for _, n := range s.Namespaces {
		sum.Namespaces = append(sum.Namespaces, n.Name+"="+n.Labels["from"]+mark(ObjectKey{"Namespace", "", n.Name}))
	}
	for _, e := range s.Errors {
		sum.Errors = append(sum.Errors, e.Error())
	}
	for _, k := range collisions {
		sum.Collisions = append(sum.Collisions, k.String())
	}
	return sum
}

func configMapYAML(ns, name, v string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\ndata:\n  v: " + v + "\n"
}

func secretYAML(ns, name, v string) string {
	return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\nstringData:\n  v: " + v + "\n"
}

func namespaceYAML(name, from string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels:\n    from: " + from + "\n"
}

func docs(d ...string) string { return strings.Join(d, "---\n") }

func TestUnion(t *testing.T) {
	tests := []struct {
		name       string
		own, fleet *string // nil: a nil Set
		want       unionSummary
		collisions []string // Collisions(own, fleet)
	}{{
		name: "no fleet set",
		own:  ptr(docs(podYAML("web", "nginx:own"), configMapYAML("default", "cfg", "own"))),
		want: unionSummary{Pods: []string{"default/web=nginx:own"}, ConfigMaps: []string{"default/cfg=own"}},
	}, {
		name:  "no own set",
		fleet: ptr(podYAML("web", "nginx:fleet")),
		want:  unionSummary{Pods: []string{"default/web=nginx:fleet (fleet)"}},
	}, {
		name:  "disjoint sets are merged and sorted",
		own:   ptr(docs(podYAML("b-own", "busybox"), podYAML("d-own", "busybox"), secretYAML("default", "s-own", "own"))),
		fleet: ptr(docs(podYAML("c-fleet", "nginx"), podYAML("a-fleet", "nginx"), configMapYAML("default", "cfg", "fleet"), secretYAML("default", "s-fleet", "fleet"))),
		want: unionSummary{
			Pods:       []string{"default/a-fleet=nginx (fleet)", "default/b-own=busybox", "default/c-fleet=nginx (fleet)", "default/d-own=busybox"},
			ConfigMaps: []string{"default/cfg=fleet (fleet)"},
			Secrets:    []string{"default/s-fleet=fleet (fleet)", "default/s-own=own"},
		},
	}, {
		name:  "own wins a collision of each kind",
		own:   ptr(docs(podYAML("web", "nginx:own"), configMapYAML("default", "cfg", "own"), secretYAML("default", "creds", "own"))),
		fleet: ptr(docs(podYAML("web", "nginx:fleet"), podYAML("db", "postgres"), configMapYAML("default", "cfg", "fleet"), secretYAML("default", "creds", "fleet"))),
		want: unionSummary{
			Pods:       []string{"default/db=postgres (fleet)", "default/web=nginx:own"},
			ConfigMaps: []string{"default/cfg=own"},
			Secrets:    []string{"default/creds=own"},
			Collisions: []string{"Pod default/web", "ConfigMap default/cfg", "Secret default/creds"},
		},
		collisions: []string{"Pod default/web", "ConfigMap default/cfg", "Secret default/creds"},
	}, {
		name:  "same name in another namespace is no collision",
		own:   ptr(podYAML("web", "nginx:own")),
		fleet: ptr(docs(namespaceYAML("edge", "fleet"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: edge\nspec:\n  containers:\n  - name: main\n    image: nginx:fleet\n")),
		want: unionSummary{
			Pods:       []string{"default/web=nginx:own", "edge/web=nginx:fleet (fleet)"},
			Namespaces: []string{"edge=fleet (fleet)"},
		},
	}, {
		name:  "a namespace both declare is shared, own's declaration kept",
		own:   ptr(docs(namespaceYAML("edge", "own"), namespaceYAML("lab", "own"))),
		fleet: ptr(docs(namespaceYAML("edge", "fleet"), namespaceYAML("apps", "fleet"))),
		want:  unionSummary{Namespaces: []string{"apps=fleet (fleet)", "edge=own", "lab=own"}},
	}, {
		name:  "errors are own's then fleet's",
		own:   ptr(docs(podYAML("web", "nginx:own"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad-own\n")),
		fleet: ptr(docs("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad-fleet\n", podYAML("api", "api:1"))),
		want: unionSummary{
			Pods: []string{"default/api=api:1 (fleet)", "default/web=nginx:own"},
			Errors: []string{
				"own.yaml: document 1 (Pod default/bad-own): spec.containers: Required value",
				"fleet.yaml: document 0 (Pod default/bad-fleet): spec.containers: Required value",
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var own, fleet *Set
			if tt.own != nil {
				own = Decode("own.yaml", []byte(*tt.own), testOpts)
			}
			if tt.fleet != nil {
				fleet = Decode("fleet.yaml", []byte(*tt.fleet), testOpts)
			}
			var ownHash, fleetHash string
			if own != nil {
				ownHash = own.Hash()
			}
			if fleet != nil {
				fleetHash = fleet.Hash()
			}
			u, collisions := Union(own, fleet)
			if diff := cmp.Diff(tt.want, summarizeUnion(u, collisions)); diff != "" {
				t.Errorf("Union (-want +got):\n%s", diff)
			}
			var got []string
			for _, k := range Collisions(own, fleet) {
				got = append(got, k.String())
			}
			if diff := cmp.Diff(tt.collisions, got); diff != "" {
				t.Errorf("Collisions (-want +got):\n%s", diff)
			}
			if own != nil && own.Hash() != ownHash || fleet != nil && fleet.Hash() != fleetHash {
				t.Error("Union changed its arguments")
			}
		})
	}
}

// TestUnionSources: the union keeps each object's file, and only the fleet
// set's are marked Fleet, so the API can tell which objects it may write.
func TestUnionSources(t *testing.T) {
	own := Decode("web.yaml", []byte(docs(podYAML("web", "nginx:own"), podYAML("web", "nginx:dup"))), testOpts)
	fleet := Decode("fleet.yaml", []byte(docs(podYAML("db", "postgres"), podYAML("web", "nginx:fleet"))), testOpts)
	u, _ := Union(own, fleet)
	type source struct {
		Key     string
		At      Location
		Sources []string
		Fleet   bool
	}
	var got []source
	for _, k := range []ObjectKey{{"Pod", "default", "web"}, {"Pod", "default", "db"}, {"Pod", "default", "none"}} {
		at, _ := u.Source(k)
		got = append(got, source{Key: k.String(), At: at, Sources: u.Sources(k), Fleet: u.FromFleet(k)})
	}
	want := []source{
		// The fleet's colliding document is not one of own's sources:
		// deleting own's object must never touch the generation's files.
		{Key: "Pod default/web", At: Location{File: "web.yaml"}, Sources: []string{"web.yaml"}},
		{Key: "Pod default/db", At: Location{File: "fleet.yaml", Fleet: true}, Sources: []string{"fleet.yaml"}, Fleet: true},
		{Key: "Pod default/none"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if own.FromFleet(ObjectKey{"Pod", "default", "web"}) || fleet.FromFleet(ObjectKey{"Pod", "default", "db"}) {
		t.Error("a Set not made by Union reports an object from the fleet")
	}
}

// TestReadDir: a generation's directory reads as the Watcher reads a
// settled directory; a missing directory or an unreadable file is an error.
func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", docs(podYAML("web", "nginx"), podYAML("web", "nginx:dup")))
	writeFile(t, dir, "b.json", `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"v": "1"}}`)
	writeFile(t, dir, "c.yml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n")
	writeFile(t, dir, ".hidden.yaml", podYAML("hidden", "nginx"))
	writeFile(t, dir, "notes.txt", "not a manifest")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}

	set, err := ReadDir(dir, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	want := summary{
		Pods:       []string{"default/web"},
		ConfigMaps: []string{"default/cfg"},
		Errors: []string{
			"a.yaml: document 1 (Pod default/web): duplicate Pod: already defined in a.yaml document 0, which wins",
			"c.yml: document 0 (Pod default/bad): spec.containers: Required value",
		},
		Fields: []string{"", "spec.containers"},
	}
	if diff := cmp.Diff(want, summarize(set)); diff != "" {
		t.Errorf("ReadDir (-want +got):\n%s", diff)
	}
	watched, _ := newDirState(dir, testOpts, 500*time.Millisecond).scan(time.Now().Add(time.Hour))
	if set.Hash() != watched.Hash() {
		t.Errorf("ReadDir's Set differs from the Watcher's:\n%+v\n%+v", summarize(set), summarize(watched))
	}

	if _, err := ReadDir(filepath.Join(dir, "missing"), testOpts); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("ReadDir of a missing directory: err = %v, want one naming it", err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "d.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(dir, testOpts); err == nil || !strings.Contains(err.Error(), "d.yaml") {
		t.Errorf("ReadDir with an unreadable file: err = %v, want one naming d.yaml", err)
	}
}

// TestUIDLeavesOutTheGeneration: the agent annotates a fleet pod with the
// generation it came from; the annotation must not be part of the UID, or
// every pod would restart on every update.
func TestUIDLeavesOutTheGeneration(t *testing.T) {
	plain := Decode("web.yaml", []byte(podYAML("web", "nginx")), testOpts)
	annotated := Decode("web.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    podboot.dev/ota-generation: \"6\"\nspec:\n  containers:\n  - name: main\n    image: nginx\n"), testOpts)
	if len(plain.Pods) != 1 || len(annotated.Pods) != 1 {
		t.Fatalf("decoded %d and %d pods, want 1 each: %v %v", len(plain.Pods), len(annotated.Pods), plain.Errors, annotated.Errors)
	}
	if annotated.Pods[0].Annotations["podboot.dev/ota-generation"] != "6" {
		t.Fatalf("annotation lost: %v", annotated.Pods[0].Annotations)
	}
	if plain.Pods[0].UID != annotated.Pods[0].UID {
		t.Errorf("UID with the generation annotation %s, without %s: want equal", annotated.Pods[0].UID, plain.Pods[0].UID)
	}
}

func ptr(s string) *string { return &s }
