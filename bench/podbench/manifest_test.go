package podbench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestManifest(t *testing.T) {
	spec := PodSpec{Name: "podbench-seq-07", Containers: 2, Image: "busybox:1.36", Command: []string{"sleep", "86400"}, GracePeriod: 2}
	got := spec.Manifest()

	golden, err := os.ReadFile("testdata/pod.yaml")
	if err != nil {
		t.Fatalf("read golden manifest: %v", err)
	}
	if diff := cmp.Diff(string(golden), string(got)); diff != "" {
		t.Errorf("Manifest (-want +got):\n%s", diff)
	}

	// The document must be a valid Pod for a strict decoder, the way the
	// agent reads the flash.
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(got, &pod); err != nil {
		t.Fatalf("decode manifest strictly: %v", err)
	}
	grace := int64(2)
	want := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "podbench-seq-07", Labels: map[string]string{"app": "podbench"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{
				{Name: "c0", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "86400"}},
				{Name: "c1", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "86400"}},
			},
		},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("decoded manifest (-want +got):\n%s", diff)
	}
}

func TestStagePublish(t *testing.T) {
	flash := t.TempDir()
	pods := filepath.Join(flash, "pods")
	if err := os.Mkdir(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := Stage(pods, "a.yaml", []byte("a"))
	if err != nil {
		t.Fatalf("Stage a: %v", err)
	}
	b, err := Stage(pods, "b.yaml", []byte("b"))
	if err != nil {
		t.Fatalf("Stage b: %v", err)
	}
	if entries, _ := os.ReadDir(pods); len(entries) != 0 {
		t.Errorf("pods/ before Publish has %d entries, want none", len(entries))
	}
	if err := a.Publish(); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	b.Discard()
	got, err := os.ReadFile(filepath.Join(pods, "a.yaml"))
	if err != nil || string(got) != "a" {
		t.Errorf("pods/a.yaml = %q, %v; want \"a\"", got, err)
	}
	entries, _ := os.ReadDir(flash)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"pods"}, names); diff != "" {
		t.Errorf("flash after Publish and Discard (-want +got):\n%s", diff)
	}
	if _, err := Stage(filepath.Join(flash, "missing", "pods"), "c.yaml", nil); err == nil {
		t.Error("Stage into a missing directory: want an error")
	}
}
