package manifest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestRenderRoundTrip: the document the API writes for an object the
// store holds (defaulted, with its UID and kubelet's static-pod fields)
// decodes to that very object: same UID, same defaults (they are
// idempotent), so writing a pod back never restarts it. A label or an
// annotation added before the write keeps the UID too.
func TestRenderRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/decode/*")
	files = append(files, "testdata/defaults-pod.yaml")
	var objs []runtime.Object
	for _, f := range files {
		s := Decode(f, readTestdata(t, f[len("testdata/"):]), testOpts)
		if len(s.Errors) > 0 {
			t.Fatalf("%s: %v", f, s.Errors)
		}
		for _, p := range s.Pods {
			objs = append(objs, p)
		}
		for _, c := range s.ConfigMaps {
			objs = append(objs, c)
		}
		for _, c := range s.Secrets {
			objs = append(objs, c)
		}
		for _, n := range s.Namespaces {
			objs = append(objs, n)
		}
	}
	objs = append(objs,
		Decode("t.yaml", []byte(podYAML("t", "nginx")+"  tolerations: [{operator: Exists, effect: NoExecute}, {key: a, operator: Exists}]\n"), testOpts).Pods[0],
		Decode("t.yaml", []byte(podYAML("t", "nginx")+"  tolerations: [{operator: Exists, effect: NoExecute, tolerationSeconds: 5}]\n"), testOpts).Pods[0],
		Decode("s.yaml", []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n"), testOpts).Secrets[0],
	)
	if len(objs) < 8 {
		t.Fatalf("only %d objects in testdata", len(objs))
	}
	for _, obj := range objs {
		k, _ := KeyOf(obj)
		for _, edit := range []string{"as stored", "labelled", "annotated with managedFields"} {
			in := obj.DeepCopyObject()
			m := metaOf(in)
			// What the store adds, and what the API must not write.
			m.ResourceVersion, m.CreationTimestamp, m.Generation = "42", metav1.Now(), 3
			if p, ok := in.(*corev1.Pod); ok {
				p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.2"}
			}
			switch edit {
			case "labelled":
				if m.Labels == nil {
					m.Labels = map[string]string{}
				}
				m.Labels["env"] = "debug"
			case "annotated with managedFields":
				if m.Annotations == nil {
					m.Annotations = map[string]string{}
				}
				m.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = `{"a":1}`
				m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
					FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{}}}`)}}}
			}
			doc, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			checkWritten(t, k.String()+" "+edit, doc, edit == "annotated with managedFields")
			s := Decode("written.yaml", doc, testOpts)
			if len(s.Errors) > 0 {
				t.Fatalf("%s %s: the written document is rejected: %v\n%s", k, edit, s.Errors, doc)
			}
			got := setObjects(s)
			if len(got) != 1 {
				t.Fatalf("%s %s: written document holds %d objects", k, edit, len(got))
			}
			want := in.DeepCopyObject()
			wm := metaOf(want)
			wm.ResourceVersion, wm.CreationTimestamp, wm.Generation = "", metav1.Time{}, 0
			if p, ok := want.(*corev1.Pod); ok {
				p.Status = corev1.PodStatus{}
			}
			if diff := cmp.Diff(want, got[0]); diff != "" {
				t.Errorf("%s %s: re-read (-want +got):\n%s\ndocument:\n%s", k, edit, diff, doc)
			}
		}
	}
}

func setObjects(s *Set) []runtime.Object {
	var out []runtime.Object
	for _, p := range s.Pods {
		out = append(out, p)
	}
	for _, c := range s.ConfigMaps {
		out = append(out, c)
	}
	for _, c := range s.Secrets {
		out = append(out, c)
	}
	for _, n := range s.Namespaces {
		out = append(out, n)
	}
	return out
}

// checkWritten: a written document holds none of the store's and the
// decoder's fields, and keeps what apply needs.
func checkWritten(t *testing.T, what string, doc []byte, applied bool) {
	t.Helper()
	var m struct {
		Metadata map[string]any `json:"metadata"`
		Spec     map[string]any `json:"spec"`
		Status   any            `json:"status"`
	}
	if err := yaml.Unmarshal(doc, &m); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, f := range []string{"uid", "resourceVersion", "creationTimestamp", "generation"} {
		if _, ok := m.Metadata[f]; ok {
			t.Errorf("%s: the document holds metadata.%s:\n%s", what, f, doc)
		}
	}
	if _, ok := m.Spec["nodeName"]; ok || m.Status != nil {
		t.Errorf("%s: the document holds spec.nodeName or status:\n%s", what, doc)
	}
	if strings.Contains(string(doc), "kubernetes.io/config.") {
		t.Errorf("%s: the document holds kubelet's config annotations:\n%s", what, doc)
	}
	if ts, _ := m.Spec["tolerations"].([]any); len(ts) > 0 {
		if last, _ := ts[len(ts)-1].(map[string]any); len(last) == 2 && last["effect"] == "NoExecute" && last["operator"] == "Exists" && len(ts) == 1 {
			t.Errorf("%s: the document holds the decoder's NoExecute toleration:\n%s", what, doc)
		}
	}
	if _, ok := m.Metadata["managedFields"]; applied && (!ok || !strings.Contains(string(doc), "last-applied-configuration")) {
		t.Errorf("%s: the document lost managedFields or the last-applied annotation:\n%s", what, doc)
	}
}
