package nodetest

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationMetrics runs a busy pod on a real node and reads its
// usage the ways a user would: kubectl top pod and node, and a Prometheus
// scrape of /metrics.
func TestIntegrationMetrics(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	n := startNode(t)
	n.writeManifest("busy.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: busy, labels: {app: busy}}
spec:
  containers:
  - {name: spin, image: "busybox:1.36", command: ["sh", "-c", "while true; do :; done"]}
  - {name: idle, image: "busybox:1.36", command: ["sleep", "3600"]}
`)
	n.waitPod("busy", time.Minute, "Running", running)

	// kubectl top pod: the busy container's CPU is well above zero.
	out := n.mustKubectl("top", "pod", "busy", "--containers")
	cpu := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l) // POD NAME CPU(cores) MEMORY(bytes)
		if len(f) != 4 {
			t.Fatalf("kubectl top pod --containers line %q:\n%s", l, out)
		}
		cpu[f[1]] = milli(t, f[2])
	}
	if cpu["spin"] < 100 {
		t.Errorf("spin uses %dm CPU in kubectl top, want > 100m:\n%s", cpu["spin"], out)
	}
	if _, ok := cpu["idle"]; !ok {
		t.Errorf("kubectl top shows no idle container:\n%s", out)
	}
	out = n.mustKubectl("top", "pod", "-l", "app=busy")
	if !regexp.MustCompile(`(?m)^busy\s+[1-9]\d*m\s+\d+Mi\s*$`).MatchString(out) {
		t.Errorf("kubectl top pod -l app=busy:\n%s", out)
	}

	// kubectl top node: the node with CPU and memory.
	out = n.mustKubectl("top", "node")
	if !regexp.MustCompile(`(?m)^\S+\s+[1-9]\d*m\s+\d+%\s+\d+Mi\s+\d+%\s*$`).MatchString(out) {
		t.Errorf("kubectl top node:\n%s", out)
	}

	// /metrics: cAdvisor's series for the container.
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	series := regexp.MustCompile(`(?m)^container_cpu_usage_seconds_total\{container="spin",id="[^"]+",image="[^"]+",name="[^"]+",namespace="default",pod="busy"\} (\S+)$`).FindStringSubmatch(string(body))
	if series == nil {
		t.Fatalf("/metrics has no container_cpu_usage_seconds_total for busy/spin:\n%s", grep(string(body), "container_cpu"))
	}
	if v, err := strconv.ParseFloat(series[1], 64); err != nil || v <= 0 {
		t.Errorf("container_cpu_usage_seconds_total of spin = %s", series[1])
	}
	for _, want := range []string{"node_cpu_seconds_total{", "node_memory_MemAvailable_bytes ", `podboot_pods{phase="Running"} 1`, "container_memory_working_set_bytes{"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// milli parses kubectl top's CPU column ("250m", "0m", "1").
func milli(t *testing.T, s string) int {
	t.Helper()
	if v, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("CPU %q: %v", s, err)
		}
		return n
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("CPU %q: %v", s, err)
	}
	return n * 1000
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
