package nodetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	capability "github.com/containerd/containerd/v2/pkg/cap"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// cgroupsOf parses /proc/self/cgroup lines printed by a container
// ("4:cpu:/x/kubepods/burstable/pod<uid>/<id>", "0::/...") into the path
// of each v1 controller ("" names the unified hierarchy).
func cgroupsOf(log string) map[string]string {
	out := map[string]string{}
	re := regexp.MustCompile(`^\d+:([^:]*):(/.*)$`)
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		m := re.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		for _, c := range strings.Split(m[1], ",") {
			out[strings.TrimPrefix(c, "name=")] = m[2]
		}
	}
	return out
}

// readCgroup reads a cgroup v1 file of controller at path.
func readCgroup(t *testing.T, controller, path, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, path, file))
	if err != nil {
		t.Errorf("read %s: %v", file, err)
		return ""
	}
	return strings.TrimSpace(string(b))
}

// requireV1 skips what only a cgroup v1 host can show from outside (the
// QEMU end-to-end test covers cgroup v2).
func requireV1(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		testenv.Unavailable(t, "these checks read cgroup v1 files; this host has no v1 memory hierarchy (%v)", err)
	}
}

// waitLog waits until the container's log holds want.
func (n *node) waitLog(t *testing.T, pod, want string, timeout time.Duration) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, _ = n.kubectl("logs", pod)
		if strings.Contains(out, want) {
			return out
		}
	}
	t.Fatalf("log of %s lacks %q after %v:\n%s", pod, want, timeout, out)
	return ""
}

const cgroupProbe = `cat /proc/self/cgroup; echo oom_score_adj=$(cat /proc/self/oom_score_adj); echo probed; `

// TestIntegrationCgroups: on a real agent, containers run in kubelet's
// hierarchy (kubepods/, burstable/, besteffort/, pod<uid>/) with kubelet's
// values in the cgroup files, the pod totals on the pod cgroup, pids.max
// from device.yaml and oom_score_adj by QoS class; a busy loop limited to
// 200m gets 0.2 CPU; a container over its memory limit is OOMKilled and
// restarted; an OOM of a child process is reported with the exit code the
// container chose.
func TestIntegrationCgroups(t *testing.T) {
	requireV1(t)
	n := startNode(t, func(flash string) {
		device := "resources:\n  podPidsLimit: 333\n"
		if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(device), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	n.writeManifest("cgroups.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: burstable}
spec:
  containers:
  - name: app
    image: "busybox:1.36"
    command: ["sh", "-c", "`+cgroupProbe+`sleep 3600"]
    resources:
      requests: {cpu: 100m, memory: 32Mi}
      limits: {cpu: 300m, memory: 64Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: guaranteed}
spec:
  containers:
  - name: app
    image: "busybox:1.36"
    command: ["sh", "-c", "`+cgroupProbe+`sleep 3600"]
    resources:
      limits: {cpu: 250m, memory: 48Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: besteffort}
spec:
  containers:
  - name: app
    image: "busybox:1.36"
    command: ["sh", "-c", "`+cgroupProbe+`sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: spin}
spec:
  containers:
  - name: loop
    image: "busybox:1.36"
    command: ["sh", "-c", "`+cgroupProbe+`while :; do :; done & while :; do :; done"]
    resources:
      limits: {cpu: 200m, memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  containers:
  - name: hog
    image: "busybox:1.36"
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M"]
    resources:
      limits: {memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: child-oom}
spec:
  restartPolicy: Never
  containers:
  - name: parent
    image: "busybox:1.36"
    command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M; exit 3"]
    resources:
      limits: {memory: 32Mi}
`)
	var node corev1.Node
	nodeMem := func() int64 {
		if node.Name == "" {
			n.getJSON(t, &node, "get", "nodes", "-o", "jsonpath={.items[0]}")
		}
		return node.Status.Capacity.Memory().Value()
	}

	t.Run("burstable", func(t *testing.T) {
		n.waitPod("burstable", 2*time.Minute, "Running", running)
		log := n.waitLog(t, "burstable", "probed", time.Minute)
		cg := cgroupsOf(log)
		ctr := cg["cpu"]
		pod := filepath.Dir(ctr)
		if !regexp.MustCompile(`/kubepods/burstable/pod[0-9a-f-]{36}$`).MatchString(pod) {
			t.Fatalf("container cgroup %q: want it under kubepods/burstable/pod<uid>\n%s", ctr, log)
		}
		for _, c := range []struct{ controller, path, file, want string }{
			// The container: kubelet's MilliCPUToShares(100) = 102,
			// MilliCPUToQuota(300) = 30000 per 100000, the memory limit.
			{"cpu", ctr, "cpu.shares", "102"},
			{"cpu", ctr, "cpu.cfs_quota_us", "30000"},
			{"cpu", ctr, "cpu.cfs_period_us", "100000"},
			{"memory", cg["memory"], "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
			// The pod: the same totals (its one container sets both
			// limits), and pids.max from device.yaml's podPidsLimit.
			{"cpu", pod, "cpu.shares", "102"},
			{"cpu", pod, "cpu.cfs_quota_us", "30000"},
			{"memory", filepath.Dir(cg["memory"]), "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
			{"pids", filepath.Dir(cg["pids"]), "pids.max", "333"},
		} {
			if got := readCgroup(t, c.controller, c.path, c.file); got != c.want {
				t.Errorf("%s of %s: %q, want %q", c.file, c.path, got, c.want)
			}
		}
		// kubelet's Burstable score: 1000 - 1000*request/capacity.
		want := 1000 - (1000*(32<<20))/nodeMem()
		if !strings.Contains(log, fmt.Sprintf("oom_score_adj=%d\n", want)) {
			t.Errorf("oom_score_adj: want %d\n%s", want, log)
		}
	})

	t.Run("guaranteed", func(t *testing.T) {
		n.waitPod("guaranteed", 2*time.Minute, "Running", running)
		log := n.waitLog(t, "guaranteed", "probed", time.Minute)
		cg := cgroupsOf(log)
		pod := filepath.Dir(cg["cpu"])
		if !regexp.MustCompile(`/kubepods/pod[0-9a-f-]{36}$`).MatchString(pod) {
			t.Fatalf("pod cgroup %q: want kubepods/pod<uid>\n%s", pod, log)
		}
		if got := readCgroup(t, "cpu", pod, "cpu.shares"); got != "256" {
			t.Errorf("pod cpu.shares %q, want 256 (250m requested by default)", got)
		}
		if got := readCgroup(t, "cpu", pod, "cpu.cfs_quota_us"); got != "25000" {
			t.Errorf("pod cpu.cfs_quota_us %q, want 25000", got)
		}
		want := max(-997, oomScoreAdjFloor(t))
		if !strings.Contains(log, fmt.Sprintf("oom_score_adj=%d\n", want)) {
			t.Errorf("oom_score_adj: want %d (Guaranteed: -997, or the floor of a host without CAP_SYS_RESOURCE)\n%s", want, log)
		}
		// kubepods holds the node's allocatable memory: capacity less
		// system-reserved (128Mi by default), not less the eviction threshold.
		kubepods := filepath.Dir(filepath.Dir(cg["memory"]))
		wantLimit := strconv.FormatInt(nodeMem()-128<<20, 10)
		if got := readCgroup(t, "memory", kubepods, "memory.limit_in_bytes"); got != wantLimit {
			// The kernel rounds the limit down to whole pages.
			if g, _ := strconv.ParseInt(got, 10, 64); g > nodeMem()-128<<20 || g < nodeMem()-128<<20-4096 {
				t.Errorf("kubepods memory.limit_in_bytes %s, want %s", got, wantLimit)
			}
		}
	})

	t.Run("besteffort", func(t *testing.T) {
		n.waitPod("besteffort", 2*time.Minute, "Running", running)
		log := n.waitLog(t, "besteffort", "probed", time.Minute)
		cg := cgroupsOf(log)
		pod := filepath.Dir(cg["cpu"])
		if !regexp.MustCompile(`/kubepods/besteffort/pod[0-9a-f-]{36}$`).MatchString(pod) {
			t.Fatalf("pod cgroup %q: want kubepods/besteffort/pod<uid>\n%s", pod, log)
		}
		for _, p := range []string{pod, filepath.Dir(pod)} {
			if got := readCgroup(t, "cpu", p, "cpu.shares"); got != "2" {
				t.Errorf("cpu.shares of %s: %q, want 2", p, got)
			}
		}
		if !strings.Contains(log, "oom_score_adj=1000\n") {
			t.Errorf("oom_score_adj: want 1000 (BestEffort)\n%s", log)
		}
	})

	t.Run("200m busy loop gets 0.2 CPU", func(t *testing.T) {
		n.waitPod("spin", 2*time.Minute, "Running", running)
		log := n.waitLog(t, "spin", "probed", time.Minute)
		ctr := cgroupsOf(log)["cpuacct"]
		usage := func() (uint64, time.Time) {
			v, err := strconv.ParseUint(readCgroup(t, "cpuacct", ctr, "cpuacct.usage"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v, time.Now()
		}
		time.Sleep(time.Second) // past the first period's burst
		u0, t0 := usage()
		time.Sleep(5 * time.Second)
		u1, t1 := usage()
		share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
		t.Logf("two busy loops limited to 200m used %.4f CPU over %v", share, t1.Sub(t0).Round(time.Millisecond))
		if share < 0.19 || share > 0.21 {
			t.Errorf("CPU use %.4f, want 0.2 ± 5%%", share)
		}
	})

	t.Run("OOMKilled and restarted", func(t *testing.T) {
		p := n.waitPod("oom", 3*time.Minute, "restarted after an OOM kill", func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
		})
		cs := p.Status.ContainerStatuses[0]
		term := cs.LastTerminationState.Terminated
		if term == nil {
			term = cs.State.Terminated
		}
		if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
			t.Errorf("last termination %+v, want reason OOMKilled exit code 137", term)
		}
	})

	t.Run("OOM of a child keeps the exit code", func(t *testing.T) {
		p := n.waitPod("child-oom", 3*time.Minute, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		term := p.Status.ContainerStatuses[0].State.Terminated
		// containerd's OOM event marks it OOMKilled; the shell survived
		// its child and chose exit code 3.
		if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 3 {
			t.Errorf("termination %+v, want reason OOMKilled exit code 3", term)
		}
	})

	t.Run("kubectl describe node", func(t *testing.T) {
		out := n.mustKubectl("describe", "node")
		for _, want := range []string{
			`(?m)^Allocatable:\n(\s+\S+:\s+\S+\n)*\s+memory:\s+\d+Ki\n`,
			`MemoryPressure\s+False\s+.*KubeletHasSufficientMemory`,
			`(?m)^\s+default\s+burstable\s+100m \(\d+%\)\s+300m \(\d+%\)\s+32Mi \(\d+%\)\s+64Mi \(\d+%\)`,
			`(?m)^\s+cpu\s+\d+m \(\d+%\)\s+\d+m \(\d+%\)`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("kubectl describe node does not match %s:\n%s", want, out)
			}
		}
	})
}

// getJSON decodes kubectl's output into v.
func (n *node) getJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	if err := json.Unmarshal([]byte(n.mustKubectl(args...)), v); err != nil {
		t.Fatalf("kubectl %v: %v", args, err)
	}
}

// oomScoreAdjFloor is the lowest score this host lets the runtime give:
// without CAP_SYS_RESOURCE (some sandboxes) no lower than our own.
func oomScoreAdjFloor(t *testing.T) int {
	caps, err := capability.Current()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(caps, "CAP_SYS_RESOURCE") {
		return -1000
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("no CAP_SYS_RESOURCE here: oom_score_adj cannot go below %d", own)
	return own
}
