package nodetest

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationAdmission: on a real agent, a pod whose memory request is
// larger than the machine is refused with OutOfmemory (kubectl shows it as
// the STATUS, describe names the cause) while the pods beside it run; the
// node reports allocatable below capacity.
func TestIntegrationAdmission(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	n := startNode(t)
	n.writeManifest("admission.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers:
  - name: big
    image: "busybox:1.36"
    command: ["sleep", "3600"]
    resources:
      requests: {memory: 64Ti}
---
apiVersion: v1
kind: Pod
metadata: {name: modest}
spec:
  containers:
  - name: small
    image: "busybox:1.36"
    command: ["sleep", "3600"]
    resources:
      requests: {memory: 16Mi, cpu: 10m}
      limits: {memory: 16Mi, cpu: 10m}
`)
	n.waitPod("modest", time.Minute, "Running", running)
	huge := n.waitPod("huge", time.Minute, "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if huge.Status.Reason != "OutOfmemory" || !strings.HasPrefix(huge.Status.Message, "Pod was rejected: Node didn't have enough resource: memory, requested: 70368744177664") {
		t.Errorf("huge: reason %q message %q", huge.Status.Reason, huge.Status.Message)
	}
	out, err := n.kubectl("get", "pods")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(?m)^huge\s+0/1\s+OutOfmemory\s+0\s`, `(?m)^modest\s+1/1\s+Running\s+0\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("kubectl get pods does not match %s:\n%s", want, out)
		}
	}
	out, err = n.kubectl("get", "pod", "modest", "-o", "jsonpath={.status.qosClass}")
	if err != nil || out != "Guaranteed" {
		t.Errorf("modest qosClass %q, %v; want Guaranteed", out, err)
	}
	out, err = n.kubectl("describe", "pod", "huge")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`Warning\s+OutOfmemory\s+.*Node didn't have enough resource: memory`).MatchString(out) {
		t.Errorf("kubectl describe pod huge lacks the OutOfmemory event:\n%s", out)
	}
	var node corev1.Node
	if err := json.Unmarshal([]byte(n.mustKubectl("get", "nodes", "-o", "jsonpath={.items[0]}")), &node); err != nil {
		t.Fatal(err)
	}
	capMem, allocMem := node.Status.Capacity[corev1.ResourceMemory], node.Status.Allocatable[corev1.ResourceMemory]
	if allocMem.Cmp(capMem) >= 0 || allocMem.Sign() <= 0 {
		t.Errorf("node memory: allocatable %s, capacity %s; want 0 < allocatable < capacity", allocMem.String(), capMem.String())
	}
}
