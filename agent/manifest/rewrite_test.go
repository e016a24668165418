package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// decodedPod is the pod name as the file's Set holds it (as the store
// would serve it: defaulted, with its UID and static-pod fields).
func decodedPod(t *testing.T, file string, data []byte, name string) *corev1.Pod {
	t.Helper()
	for _, p := range Decode(file, data, testOpts).Pods {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("%s holds no pod %s", file, name)
	return nil
}

func podKey(name string) ObjectKey { return ObjectKey{Kind: "Pod", Namespace: "default", Name: name} }

const threePods = `# web, db and cache
apiVersion: v1
kind: Pod
metadata:
  name: web   # the front end
spec:
  containers:
  - {name: main, image: nginx}
---
# the database
apiVersion: v1
kind: Pod
metadata: {name: db}
spec:
  containers: [{name: main, image: postgres}]
# cache follows
---   # separator comment
{apiVersion: v1, kind: Pod, metadata: {name: cache}, spec: {containers: [{name: main, image: redis}]}}
`

func TestEditFileKeepsOtherDocuments(t *testing.T) {
	labelled := func(data []byte, name string) runtime.Object {
		p := decodedPod(t, "f.yaml", data, name)
		p.Labels = map[string]string{"env": "debug"}
		return p
	}
	tests := []struct {
		name    string
		file    string
		data    string
		changes func(data []byte) []Change
		want    string // the whole new file; "" when it is to be removed
	}{
		{
			name: "label the middle document",
			file: "f.yaml", data: threePods,
			changes: func(d []byte) []Change { return []Change{{Key: podKey("db"), Object: labelled(d, "db")}} },
			want: strings.Replace(threePods, "apiVersion: v1\nkind: Pod\nmetadata: {name: db}\nspec:\n  containers: [{name: main, image: postgres}]\n",
				mustRender(t, labelled([]byte(threePods), "db")), 1),
		},
		{
			name: "remove the middle document",
			file: "f.yaml", data: threePods,
			changes: func([]byte) []Change { return []Change{{Key: podKey("db")}} },
			want:    strings.Replace(threePods, "---\n# the database\napiVersion: v1\nkind: Pod\nmetadata: {name: db}\nspec:\n  containers: [{name: main, image: postgres}]\n# cache follows\n", "", 1),
		},
		{
			name: "remove the first document",
			file: "f.yaml", data: threePods,
			changes: func([]byte) []Change { return []Change{{Key: podKey("web")}} },
			want:    threePods[strings.Index(threePods, "# the database"):],
		},
		{
			name: "remove the first two documents",
			file: "f.yaml", data: threePods,
			changes: func([]byte) []Change { return []Change{{Key: podKey("web")}, {Key: podKey("db")}} },
			want:    "---   # separator comment\n{apiVersion: v1, kind: Pod, metadata: {name: cache}, spec: {containers: [{name: main, image: redis}]}}\n",
		},
		{
			name: "remove every document",
			file: "f.yaml", data: threePods,
			changes: func([]byte) []Change {
				return []Change{{Key: podKey("web")}, {Key: podKey("db")}, {Key: podKey("cache")}}
			},
			want: "",
		},
		{
			name: "append a new pod",
			file: "f.yaml", data: "# only web\n" + podYAML("web", "nginx"),
			changes: func([]byte) []Change {
				return []Change{{Key: podKey("new"), Object: decodedPod(t, "g.yaml", []byte(podYAML("new", "busybox")), "new")}}
			},
			want: "# only web\n" + podYAML("web", "nginx") + "---\n" + mustRender(t, decodedPod(t, "g.yaml", []byte(podYAML("new", "busybox")), "new")),
		},
		{
			name: "CRLF lines stay CRLF",
			file: "f.yaml", data: strings.ReplaceAll(podYAML("web", "nginx")+"---\n"+podYAML("db", "postgres"), "\n", "\r\n"),
			changes: func([]byte) []Change { return []Change{{Key: podKey("db")}} },
			want:    strings.ReplaceAll(podYAML("web", "nginx"), "\n", "\r\n"),
		},
		{
			name: "JSON values stay JSON",
			file: "f.json", data: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"main","image":"nginx"}]}}` + "\n" +
				`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db"},"spec":{"containers":[{"name":"main","image":"postgres"}]}}` + "\n",
			changes: func([]byte) []Change { return []Change{{Key: podKey("web")}} },
			want:    `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db"},"spec":{"containers":[{"name":"main","image":"postgres"}]}}` + "\n",
		},
		{
			name: "a List loses one item",
			file: "f.yaml", data: "apiVersion: v1\nkind: List\nitems:\n- " + indentItem(podYAML("web", "nginx")) + "- " + indentItem(podYAML("db", "postgres")),
			changes: func([]byte) []Change { return []Change{{Key: podKey("web")}} },
			want:    "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: db\n  spec:\n    containers:\n    - image: postgres\n      name: main\nkind: List\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.data)
			got, err := editFile(tt.file, data, tt.changes(data), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("new content (-want +got):\n%s", diff)
			}
		})
	}
}

func mustRender(t *testing.T, obj runtime.Object) string {
	t.Helper()
	b, err := Render(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditFileRefusesBrokenFile(t *testing.T) {
	for _, data := range []string{
		podYAML("web", "nginx") + "---\nmetadata: {name: [\n", // half-written second document
		podYAML("web", "nginx") + "---\njust a scalar\n",
		"# nothing but a comment\n",
	} {
		_, err := editFile("f.yaml", []byte(data), []Change{{Key: podKey("web")}}, testOpts)
		if !errors.Is(err, ErrBroken) {
			t.Errorf("edit of %q: err = %v, want ErrBroken", data, err)
		}
	}
}

// indentItem indents a document's lines after the first as a List item.
func indentItem(doc string) string {
	return strings.ReplaceAll(strings.TrimSuffix(doc, "\n"), "\n", "\n  ") + "\n"
}
