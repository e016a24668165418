package containerd

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkIntegrationShimPSS reports the proportional set size of a pod's
// shim (one per pod) with one sleeping busybox container, averaged over a
// few pods so that shared pages are split as on a board. Measured on the
// development host: ~6.0 MB, of which ~4 MB is the shim's private
// anonymous memory (Go heap and stacks) and ~2 MB its share of the
// binary's pages. The shim fixes its own runtime settings (GOMAXPROCS=4
// appended to its environment by its start command, SetGCPercent(40),
// FreeOSMemory every 30 s), and neither GOMEMLIMIT nor
// GODEBUG=madvdontneed=1 in containerd's environment changed the figure.
func BenchmarkIntegrationShimPSS(b *testing.B) {
	const pods = 4
	h := newHarness(b)
	img := h.importImage(b, "busybox:1.36")
	for i := range pods {
		pod := testPod("pss" + strconv.Itoa(i))
		sb := h.sandbox(b, pod)
		h.start(b, h.containerConfig(pod, sb, img, corev1.Container{Name: "sleep", Command: []string{"sleep", "3600"}}))
	}
	var kB int
	for b.Loop() {
		pids := shimPIDs(b, h.env.Layout.Dir)
		if len(pids) != pods {
			b.Fatalf("%d shims for %d pods", len(pids), pods)
		}
		kB = 0
		for _, pid := range pids {
			kB += pssKB(b, pid)
		}
	}
	b.ReportMetric(float64(kB)/pods, "kB-PSS/shim")
}

// shimPIDs returns the shim processes of the daemon at dir.
func shimPIDs(t testing.TB, dir string) []int {
	out, err := exec.Command("ps", "-eo", "pid=,args=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	var pids []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(line, "containerd-shim-runc-v2") || !strings.Contains(line, dir+"/") {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("ps line %q: %v", line, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// pssKB reads a process's Pss from /proc/<pid>/smaps_rollup.
func pssKB(t testing.TB, pid int) int {
	p := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: Pss line %q: %v", p, line, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no Pss line", p)
	return 0
}
