package e2e

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestEvictionOnTheBoard: with device.yaml's evictionHard memory.available
// above what the board has, the node reports MemoryPressure and the
// BestEffort pods are evicted one per round: Failed, reason Evicted, with
// kubelet's message, while the API keeps answering.
func TestEvictionOnTheBoard(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	fl := mustBeClean(t, dir)
	// The board has 1 GiB: 8Gi available can never be met.
	if err := fl.WriteFile("/device.yaml", []byte("resources:\n  evictionHard: {memory.available: 8Gi}\n")); err != nil {
		t.Fatal(err)
	}
	b := Boot(t, dir, Options{})
	mustWaitAPI(t, b)

	var evicted map[string]corev1.PodStatus
	for deadline := time.Now().Add(PodsTimeout); ; time.Sleep(2 * time.Second) {
		pods, err := b.Pods()
		evicted = map[string]corev1.PodStatus{}
		for _, p := range pods {
			if p.Status.Reason == "Evicted" {
				evicted[p.Name] = p.Status
			}
		}
		if err == nil && len(evicted) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("evicted within %s: %v (%v); want e2e-pair and e2e-sleeper", PodsTimeout, evicted, err)
		}
	}
	for name, st := range evicted {
		if st.Phase != corev1.PodFailed || !regexp.MustCompile(`^The node was low on resource: memory\. Threshold quantity: 8Gi, available: \d+(Ki|Mi|Gi)?\. `).MatchString(st.Message) {
			t.Errorf("%s: phase %s, message %q; want Failed with kubelet's eviction message", name, st.Phase, st.Message)
		}
	}
	out, err := b.Kubectl("get", "node", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list corev1.NodeList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	pressure := false
	for _, n := range list.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeMemoryPressure && c.Status == corev1.ConditionTrue && c.Reason == "KubeletHasInsufficientMemory" {
				pressure = true
			}
		}
	}
	if !pressure {
		t.Errorf("no MemoryPressure True on the node:\n%s", out)
	}
	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}
