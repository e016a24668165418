package manifest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/testenv"
)

// conformanceDir holds verbatim example manifests of the Kubernetes website
// (see its README.md); they are decoded in place, never copied.
// (testenv.ConformanceDir finds it).

// TestConformanceExamples decodes every example manifest and checks what it
// yields. Every file yields its objects except the documented exception.
func TestConformanceExamples(t *testing.T) {
	conformanceDir := testenv.ConformanceDir(t)
	// Files that are not exactly one valid Pod.
	special := map[string]string{
		"configmap/configmap-multikeys.yaml":    "cm=1",
		"configmap/configmaps.yaml":             "cm=2",
		"pods/config/example-redis-config.yaml": "cm=1",
		"pods/inject/configmap-envFrom.yaml":    "cm=1",
		"pods/inject/secret.yaml":               "secret=1",
		// Documented reason: the stored example has no apiVersion line
		// (README.md), which the API server rejects too.
		"pods/inject/pod-single-secret-env-variable.yaml": "error=pod-single-secret-env-variable.yaml: document 0 (Pod default/secret-envars-test-pod): apiVersion: Required value: kind Pod needs apiVersion v1",
	}
	got := map[string]string{}
	want := map[string]string{}
	err := filepath.WalkDir(conformanceDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsManifestFile(d.Name()) {
			return err
		}
		rel, _ := filepath.Rel(conformanceDir, path)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := Decode(d.Name(), data, testOpts)
		got[rel] = describe(s)
		if w, ok := special[rel]; ok {
			want[rel] = w
		} else {
			want[rel] = "pod=1"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 60 {
		t.Errorf("only %d manifests found under %s; expected the whole example set", len(got), conformanceDir)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conformance examples (-want +got):\n%s", diff)
	}
}

func describe(s *Set) string {
	var parts []string
	add := func(what string, n int) {
		if n > 0 {
			parts = append(parts, what+"="+itoa(n))
		}
	}
	add("pod", len(s.Pods))
	add("cm", len(s.ConfigMaps))
	add("secret", len(s.Secrets))
	add("ns", len(s.Namespaces))
	for _, e := range s.Errors {
		parts = append(parts, "error="+e.Error())
	}
	return strings.Join(parts, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestConformanceSpotChecks looks at a few defaulted values of the examples.
func TestConformanceSpotChecks(t *testing.T) {
	conformanceDir := testenv.ConformanceDir(t)
	pod := func(rel string) *Set {
		data, err := os.ReadFile(filepath.Join(conformanceDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return Decode(filepath.Base(rel), data, testOpts)
	}
	init := pod("pods/init-containers.yaml").Pods[0]
	redis := pod("pods/config/redis-pod.yaml").Pods[0]
	cpu := pod("pods/resource/pod-level-cpu-request-limit.yaml").Pods[0]
	secret := pod("pods/inject/secret.yaml").Secrets[0]
	got := []string{
		string(init.Spec.InitContainers[0].ImagePullPolicy), // busybox:1.28
		string(init.Spec.Containers[0].ImagePullPolicy),     // nginx
		string(redis.Spec.Containers[0].ImagePullPolicy),    // redis:5
		cpu.Namespace, cpu.Spec.Resources.Requests.Cpu().String(),
		string(secret.Data["username"]),
	}
	want := []string{"IfNotPresent", "Always", "IfNotPresent", "pod-resources-example", "500m", "my-app"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
