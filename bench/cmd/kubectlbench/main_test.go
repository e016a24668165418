package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestPodYAML: the bench's pod decodes strictly (the agent refuses an
// unknown field) and stops at once on SIGTERM, so a deletion between runs
// does not wait out the grace period.
func TestPodYAML(t *testing.T) {
	for _, name := range []string{"apply-0", "file-19", "many-099", "exec-target"} {
		var p corev1.Pod
		if err := yaml.UnmarshalStrict([]byte(podYAML(name)), &p); err != nil {
			t.Fatalf("podYAML(%q): %v", name, err)
		}
		got := []string{p.Kind, p.Name, p.Spec.Containers[0].Image, p.Spec.Containers[0].Command[2]}
		want := []string{"Pod", name, "busybox:1.36", "trap 'exit 0' TERM; sleep 3600 & wait"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("podYAML(%q) (-want +got):\n%s", name, diff)
		}
	}
}
