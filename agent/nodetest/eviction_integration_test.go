package nodetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationEviction: with device.yaml's evictionHard memory.available
// set above what this machine has available, the node is under memory
// pressure from the start: kubectl describe node shows MemoryPressure True
// (KubeletHasInsufficientMemory), the BestEffort pod is evicted first
// (kubectl shows Evicted, describe the reason and message) while the
// others run, one pod per 10 s round, the Guaranteed pod last.
func TestIntegrationEviction(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	mi, err := fs.Meminfo()
	if err != nil || mi.MemAvailableBytes == nil || mi.MemTotalBytes == nil {
		t.Fatalf("read /proc/meminfo: %v", err)
	}
	// Halfway between available and total: above what is available (so
	// the threshold is met), below the capacity (so allocatable, capacity
	// less the threshold, still admits the pods' small requests).
	avail, total := *mi.MemAvailableBytes, *mi.MemTotalBytes
	threshold := avail + (total-avail)/2
	if (total-avail)/2 < 64<<20 {
		testenv.Unavailable(t, "needs at least 128Mi of memory in use on this machine (total %d, available %d)", total, avail)
	}
	n := startNode(t, func(flash string) {
		dev := fmt.Sprintf("resources:\n  evictionHard:\n    memory.available: %q\n", fmt.Sprint(threshold))
		if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(dev), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	n.writeManifest("eviction.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: guaranteed}
spec:
  containers:
  - name: app
    image: "busybox:1.36"
    command: ["sleep", "3600"]
    resources:
      requests: {memory: 64Mi, cpu: 10m}
      limits: {memory: 64Mi, cpu: 10m}
---
apiVersion: v1
kind: Pod
metadata: {name: burstable}
spec:
  containers:
  - name: app
    image: "busybox:1.36"
    command: ["sleep", "3600"]
    resources:
      requests: {memory: 8Mi}
      limits: {memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: besteffort}
spec:
  containers:
  - name: app
    image: "busybox:1.36"
    command: ["sleep", "3600"]
`)
	evicted := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted" }
	if g := n.waitPod("guaranteed", time.Minute, "Running", running); g.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("guaranteed: qosClass %s", g.Status.QOSClass)
	}
	be := n.waitPod("besteffort", 2*time.Minute, "evicted", evicted)
	// One pod per round: right after the first eviction the others run.
	for _, name := range []string{"burstable", "guaranteed"} {
		if p, ok := n.getPod("default", name); !ok || evicted(p) {
			t.Errorf("%s evicted in the same round as besteffort (or gone): %+v", name, p.Status)
		}
	}
	if !strings.HasPrefix(be.Status.Message, "The node was low on resource: memory. Threshold quantity: ") {
		t.Errorf("besteffort: message %q, want kubelet's eviction message", be.Status.Message)
	}
	if c := condition(be, corev1.DisruptionTarget); c != corev1.ConditionTrue {
		t.Errorf("besteffort: DisruptionTarget %q, want True", c)
	}
	if cs := containerStatus(be, "app"); cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 137 {
		t.Errorf("besteffort: container status %+v, want terminated with 137", cs)
	}
	// kubectl's STATUS column is the last container's terminated reason
	// when it has one (printPod), so a pod evicted by kubelet shows the
	// SIGKILLed container's Error, as on a cluster since Kubernetes 1.22
	// (kubernetes/kubernetes#105467); describe shows Evicted.
	out := n.mustKubectl("get", "pods")
	if !regexp.MustCompile(`(?m)^besteffort\s+0/1\s+Error\s`).MatchString(out) {
		t.Errorf("kubectl get pods does not show besteffort's killed container:\n%s", out)
	}
	out = n.mustKubectl("describe", "pod", "besteffort")
	for _, want := range []string{`(?m)^Status:\s+Failed$`, `(?m)^Reason:\s+Evicted$`, `(?m)^Message:\s+The node was low on resource: memory\.`, `Warning\s+Evicted\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("kubectl describe pod besteffort does not match %s:\n%s", want, out)
		}
	}
	out = n.mustKubectl("describe", "node")
	if !regexp.MustCompile(`MemoryPressure\s+True\s.*KubeletHasInsufficientMemory\s+kubelet has insufficient memory available`).MatchString(out) {
		t.Errorf("kubectl describe node does not show MemoryPressure True:\n%s", out)
	}
	if !strings.Contains(out, "NodeHasInsufficientMemory") {
		t.Errorf("kubectl describe node shows no NodeHasInsufficientMemory event:\n%s", out)
	}

	// The next round takes the Burstable pod; the Guaranteed one, under
	// its request, is last.
	n.waitPod("burstable", time.Minute, "evicted", evicted)
	if p, ok := n.getPod("default", "guaranteed"); !ok || evicted(p) {
		t.Errorf("guaranteed evicted in the same round as burstable")
	}
	n.waitPod("guaranteed", time.Minute, "evicted", evicted)
	// Evicted pods are never started again.
	time.Sleep(3 * time.Second)
	if p, _ := n.getPod("default", "besteffort"); p == nil || !evicted(p) {
		t.Errorf("besteffort after eviction: %+v, want still Failed/Evicted", p)
	}
}
