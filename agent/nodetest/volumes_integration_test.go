package nodetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationVolumes runs the Kubernetes docs' multi-container
// examples that share an emptyDir, unchanged: the web container serves
// what the init container wrote, and the adapter sidecar reads the log the
// main container appends to. A read-only hostPath can be read and not
// written. A removed pod takes its emptyDir with it, not its hostPath.
func TestIntegrationVolumes(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Unavailable(t, "needs nsenter on PATH (util-linux)")
	}
	examples := testenv.ConformanceDir(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "greeting"), []byte("hello from the node\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t)
	for _, rel := range []string{"pods/multi-container/shared-volume.yaml", "pods/multi-container/adapter.yaml"} {
		b, err := os.ReadFile(filepath.Join(examples, rel))
		if err != nil {
			t.Fatal(err)
		}
		n.writeManifest(filepath.Base(rel), string(b))
	}
	n.writeManifest("hostpath.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: hostpath-ro}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: reader
    image: "busybox:1.36"
    command: ["sh", "-c", "cat /host/greeting; if echo x > /host/written 2>/dev/null; then echo write-succeeded; else echo write-refused; fi; echo checked; sleep 3600"]
    volumeMounts:
    - {name: node-dir, mountPath: /host, readOnly: true}
  volumes:
  - name: node-dir
    hostPath: {path: "`+hostDir+`", type: Directory}
`)

	t.Run("shared volume", func(t *testing.T) {
		p := n.waitPodIn(t, "default", "shared-volume-example", 2*time.Minute, "Running after its init container", running)
		if cs := containerStatus(p, "content-writer"); cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("content-writer: %+v, want terminated Completed", cs)
		}
		emptyDir := filepath.Join(n.state, "kubelet", "pods", string(p.UID), "volumes", "kubernetes.io~empty-dir", "content")
		b, err := os.ReadFile(filepath.Join(emptyDir, "index.html"))
		if err != nil || string(b) != "Hello from the init container\n" {
			t.Errorf("index.html in the emptyDir %s: %q %v", emptyDir, b, err)
		}
		// The web container (busybox httpd standing in for nginx) serves it
		// on the pod's loopback, reached from inside the pod's network
		// namespace.
		netns := filepath.Join(n.state, "netns", string(p.UID), "net")
		var out []byte
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, err = exec.CommandContext(ctx, "nsenter", "--net="+netns, "/bin/busybox", "wget", "-qO-", "http://127.0.0.1:80/").CombinedOutput()
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil || string(out) != "Hello from the init container\n" {
			t.Errorf("GET / from the web container: %q %v, want the init container's page", out, err)
		}

		n.removeManifest("shared-volume.yaml")
		n.waitGone("shared-volume-example", 2*time.Minute)
		podDir := filepath.Join(n.state, "kubelet", "pods", string(p.UID))
		if _, err := os.Stat(podDir); !os.IsNotExist(err) {
			t.Errorf("pod directory %s after the pod was removed: %v, want it gone", podDir, err)
		}
	})

	t.Run("adapter sidecar", func(t *testing.T) {
		n.waitPodIn(t, "default", "adapter-pattern-example", 2*time.Minute, "Running with its sidecar", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "adapter")
			return running(p) && cs != nil && cs.State.Running != nil
		})
		out := n.waitContainerLog(t, "adapter-pattern-example", "adapter", " raw event", time.Minute)
		if !strings.Contains(out, "adapted: ") {
			t.Errorf("adapter log lacks the adapted lines:\n%s", out)
		}
	})

	t.Run("read-only hostPath", func(t *testing.T) {
		n.waitPodIn(t, "default", "hostpath-ro", 2*time.Minute, "Running", running)
		out := n.waitContainerLog(t, "hostpath-ro", "reader", "checked", time.Minute)
		for _, want := range []string{"hello from the node\n", "can't create /host/written: Read-only file system\n", "write-refused\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("reader's log lacks %q:\n%s", want, out)
			}
		}
		if _, err := os.Stat(filepath.Join(hostDir, "written")); !os.IsNotExist(err) {
			t.Errorf("the container wrote through its read-only hostPath: %v", err)
		}
		n.removeManifest("hostpath.yaml")
		n.waitGone("hostpath-ro", 2*time.Minute)
		if _, err := os.Stat(filepath.Join(hostDir, "greeting")); err != nil {
			t.Errorf("hostPath content after the pod was removed: %v", err)
		}
	})
}
