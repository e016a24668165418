package nodetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationNodeSelector runs the website's pod-nginx.yaml
// (nodeSelector disktype: ssd), read unchanged from the conformance
// folder: on a node without that label kubelet's admission refuses it
// with NodeAffinity and kubelet's message; on a node whose device.yaml
// gives disktype: ssd it runs, and the node shows the label beside the
// well-known ones.
func TestIntegrationNodeSelector(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join(testenv.ConformanceDir(t), "pods", "pod-nginx.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no disktype label", func(t *testing.T) {
		n := startNode(t)
		n.writeManifest("pod-nginx.yaml", string(manifest))
		p := n.waitPod("nginx", time.Minute, "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		const msg = "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
		if p.Status.Reason != "NodeAffinity" || p.Status.Message != msg {
			t.Errorf("nginx: reason %q message %q; want NodeAffinity %q", p.Status.Reason, p.Status.Message, msg)
		}
		if len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil {
			t.Errorf("a refused pod's container runs: %+v", p.Status.ContainerStatuses)
		}
		if out := n.mustKubectl("get", "pods"); !regexp.MustCompile(`(?m)^nginx\s+0/1\s+NodeAffinity\s+0\s`).MatchString(out) {
			t.Errorf("kubectl get pods does not show NodeAffinity:\n%s", out)
		}
		if out := n.mustKubectl("describe", "pod", "nginx"); !regexp.MustCompile(`Warning\s+NodeAffinity\s+.*Predicate NodeAffinity failed: node\(s\) didn't match Pod's node affinity/selector`).MatchString(out) {
			t.Errorf("kubectl describe pod nginx lacks the NodeAffinity event:\n%s", out)
		}
	})

	t.Run("device.yaml gives disktype: ssd", func(t *testing.T) {
		n := startNode(t, func(flash string) {
			if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte("node:\n  labels:\n    disktype: ssd\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		n.writeManifest("pod-nginx.yaml", string(manifest))
		n.waitPod("nginx", time.Minute, "Running", running)
		labels := n.mustKubectl("get", "nodes", "--show-labels")
		for _, want := range []string{"disktype=ssd", "kubernetes.io/arch=" + runtimeArch(), "kubernetes.io/os=linux", "kubernetes.io/hostname="} {
			if !strings.Contains(labels, want) {
				t.Errorf("kubectl get nodes --show-labels lacks %s:\n%s", want, labels)
			}
		}
	})
}

// TestIntegrationNodeLease: kubectl describe node finds the node's Lease
// (no lookup error) and shows its holder and renew time, which moves as
// the agent renews it every 10 s.
func TestIntegrationNodeLease(t *testing.T) {
	n := startNode(t)
	name := n.mustKubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
	renewTime := regexp.MustCompile(`(?m)^  RenewTime:\s+(.+)$`)
	describe := func() string {
		t.Helper()
		out := n.mustKubectl("describe", "node", name)
		if strings.Contains(out, "Failed to get lease") {
			t.Fatalf("kubectl describe node shows a lease lookup error:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^Lease:\n  HolderIdentity:\s+` + regexp.QuoteMeta(name) + `\n  AcquireTime:\s+<unset>\n  RenewTime:\s+\S`).MatchString(out) {
			t.Fatalf("kubectl describe node lacks the lease's holder %q and renew time:\n%s", name, out)
		}
		return renewTime.FindStringSubmatch(out)[1]
	}
	first := describe()
	renewed, err := time.Parse(time.RFC1123Z, first)
	if err != nil {
		t.Fatalf("RenewTime %q: %v", first, err)
	}
	if age := time.Since(renewed); age > 15*time.Second || age < -time.Second {
		t.Errorf("RenewTime %s is %v old, want at most a renewal interval", first, age)
	}
	if out := n.mustKubectl("get", "leases", "-n", "kube-node-lease"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+` + regexp.QuoteMeta(name) + `\s+\S+$`).MatchString(out) {
		t.Errorf("kubectl get leases -n kube-node-lease lacks the node's lease held by %s:\n%s", name, out)
	}
	deadline := time.Now().Add(25 * time.Second)
	for describe() == first {
		if time.Now().After(deadline) {
			t.Fatalf("RenewTime still %s after 25 s", first)
		}
		time.Sleep(2 * time.Second)
	}
}
