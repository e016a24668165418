package nodetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// mirrorRegistry serves every stand-in image from a registry on 127.0.0.1
// (testenv.Mirror), for the examples that pull.
func mirrorRegistry(t *testing.T) string { return testenv.Mirror(t, testenv.StandIns(t)) }

// TestIntegrationConformanceExamples runs the website examples that need
// nothing beyond static pods on containerd (no volumes, probes, resources
// or services), unchanged, and checks what the docs say they do.
func TestIntegrationConformanceExamples(t *testing.T) {
	dir := testenv.ConformanceDir(t)
	host := mirrorRegistry(t)
	n := startNode(t, func(flash string) {
		device := fmt.Sprintf("registries:\n  mirrors:\n    \"*\":\n      endpoint: [\"http://%s\"]\n", host)
		if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(device), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	copyExample := func(rel string) {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		n.writeManifest(strings.ReplaceAll(rel, "/", "_"), string(b))
	}
	for _, rel := range []string{
		"pods/inject/dependent-envars.yaml",
		"pods/inject/envars.yaml",
		"pods/security/security-context-2.yaml",
		"pods/security/security-context-3.yaml",
		"pods/commands.yaml",
		"pods/multi-container/localhost.yaml",
	} {
		copyExample(rel)
	}

	t.Run("dependent environment variables", func(t *testing.T) {
		// busybox without a tag: imagePullPolicy Always, pulled via the mirror.
		n.waitPod("dependent-envars-demo", 2*time.Minute, "Running", running)
		var out string
		for i := 0; i < 50 && !strings.Contains(out, "ESCAPED_REFERENCE"); i++ {
			out, _ = n.kubectl("logs", "dependent-envars-demo")
			time.Sleep(100 * time.Millisecond)
		}
		// As the Kubernetes docs show: a reference to a variable defined
		// earlier expands, an escaped one does not.
		for _, want := range []string{"SERVICE_ADDRESS\nhttps://172.17.0.1:80\n", "ESCAPED_REFERENCE\n$(PROTOCOL)://172.17.0.1:80\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
	for _, name := range []string{"envar-demo", "security-context-demo-2", "security-context-demo-3"} {
		t.Run(name, func(t *testing.T) {
			p := n.waitPod(name, 2*time.Minute, "Running", running)
			if !strings.Contains(p.Status.ContainerStatuses[0].ImageID, "@sha256:") {
				t.Errorf("imageID %q", p.Status.ContainerStatuses[0].ImageID)
			}
		})
	}
	t.Run("sidecar on localhost", func(t *testing.T) {
		// A native sidecar (an init container with restartPolicy Always)
		// fetches the web container's page over the pod's shared localhost.
		p := n.waitPod("localhost-example", 2*time.Minute, "Running with its sidecar", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "client")
			return running(p) && cs != nil && cs.State.Running != nil && cs.Ready
		})
		if condition(p, corev1.PodInitialized) != corev1.ConditionTrue {
			t.Errorf("Initialized: %+v", p.Status.Conditions)
		}
		var out string
		for i := 0; i < 100 && !strings.Contains(out, "<html>"); i++ {
			out, _ = n.kubectl("logs", "localhost-example", "-c", "client")
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(out, "<html>") {
			t.Errorf("the sidecar did not get the page over localhost:\n%s", out)
		}
		if get := n.mustKubectl("get", "pod", "localhost-example"); !strings.Contains(get, "2/2") {
			t.Errorf("READY should count the sidecar:\n%s", get)
		}
	})
	t.Run("command and args", func(t *testing.T) {
		// printenv HOSTNAME KUBERNETES_PORT: the hostname is the pod name.
		// A board has no Services, so KUBERNETES_PORT is unset and printenv
		// exits 1; restartPolicy OnFailure then restarts it, as kubelet would.
		p := n.waitPod("command-demo", 2*time.Minute, "a run that exited", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "command-demo-container")
			return cs != nil && (cs.RestartCount > 0 || cs.State.Terminated != nil)
		})
		_ = p
		out, err := n.kubectl("logs", "command-demo")
		if err != nil {
			out, _ = n.kubectl("logs", "command-demo", "--previous")
		}
		if !strings.HasPrefix(out, "command-demo\n") {
			t.Errorf("printenv HOSTNAME = %q", out)
		}
	})
}
