package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestResourcesOnTheBoard: on the board's cgroup v2, pods run in kubelet's
// hierarchy with kubelet's values in cpu.weight, cpu.max, memory.max and
// pids.max; a 200m busy loop gets 0.2 CPU; a container over its memory
// limit is OOMKilled and restarted, and an OOM of a child kills the whole
// container (memory.oom.group); a pod too big for the board is refused
// with OutOfmemory; kubectl top and describe node show figures.
func TestResourcesOnTheBoard(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	fl := mustBeClean(t, dir)
	pods, err := os.ReadFile("testdata/resources/e2e-resources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.WriteFile("/pods/e2e-resources.yaml", pods); err != nil {
		t.Fatal(err)
	}
	b := Boot(t, dir, Options{DebugShell: true})
	mustWaitAPI(t, b)
	// The others never run for long: they are OOM-killed or refused.
	running := []string{"e2e-besteffort", "e2e-burstable", "e2e-guaranteed", "e2e-pair", "e2e-sleeper", "e2e-spin"}
	for deadline := time.Now().Add(PodsTimeout); ; time.Sleep(time.Second) {
		pods, err := b.Pods()
		up := map[string]bool{}
		for _, p := range pods {
			up[p.Name] = Running(p)
		}
		if err == nil && !slices.ContainsFunc(running, func(n string) bool { return !up[n] }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods %v not all Running within %s (%v)", running, PodsTimeout, err)
		}
	}
	sh := b.MustShell // the calling (sub)test's: FailNow stops that one
	pod := func(t *testing.T, name string) corev1.Pod {
		t.Helper()
		out, err := b.Kubectl("get", "pod", name, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var p corev1.Pod
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// files prints name=value for each cgroup file of dir and of its one
	// child (the container's cgroup).
	files := func(t *testing.T, dir string, names ...string) map[string]string {
		t.Helper()
		var cmd strings.Builder
		fmt.Fprintf(&cmd, "cd /sys/fs/cgroup%s", dir)
		for _, n := range names {
			fmt.Fprintf(&cmd, "; echo pod:%s=$(cat %s)", n, n)
		}
		cmd.WriteString("; for c in */; do cd $c")
		for _, n := range names {
			fmt.Fprintf(&cmd, "; echo ctr:%s=$(cat %s)", n, n)
		}
		cmd.WriteString("; done")
		out := sh(t, cmd.String())
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^((?:pod|ctr):[a-z.]+)=(.*)$`).FindAllStringSubmatch(out, -1) {
			got[m[1]] = strings.TrimSpace(m[2])
		}
		return got
	}
	check := func(t *testing.T, got, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s = %q, want %q", k, got[k], w)
			}
		}
	}

	t.Run("burstable", func(t *testing.T) {
		p := pod(t, "e2e-burstable")
		if p.Status.QOSClass != corev1.PodQOSBurstable {
			t.Errorf("qosClass %s", p.Status.QOSClass)
		}
		got := files(t, "/kubepods/burstable/pod"+string(p.UID), "cpu.weight", "cpu.max", "memory.max", "pids.max", "memory.oom.group")
		check(t, got, map[string]string{
			// 100m → 102 shares → weight 17 (runc's conversion), 300m →
			// 30000 per 100000, 64Mi, pids.max from device.yaml's default.
			"pod:cpu.weight":       "17",
			"pod:cpu.max":          "30000 100000",
			"pod:memory.max":       strconv.Itoa(64 << 20),
			"pod:pids.max":         "1024",
			"ctr:cpu.weight":       "17",
			"ctr:cpu.max":          "30000 100000",
			"ctr:memory.max":       strconv.Itoa(64 << 20),
			"ctr:memory.oom.group": "1",
		})
	})

	t.Run("guaranteed and besteffort", func(t *testing.T) {
		g := pod(t, "e2e-guaranteed")
		got := files(t, "/kubepods/pod"+string(g.UID), "cpu.weight", "cpu.max", "memory.max")
		check(t, got, map[string]string{
			"pod:cpu.weight": "35", // 250m → 256 shares
			"pod:cpu.max":    "25000 100000",
			"pod:memory.max": strconv.Itoa(48 << 20),
		})
		be := pod(t, "e2e-besteffort")
		got = files(t, "/kubepods/besteffort/pod"+string(be.UID), "cpu.weight", "cpu.max", "memory.max")
		check(t, got, map[string]string{
			"pod:cpu.weight": "1", // 2 shares
			"pod:cpu.max":    "max 100000",
			"pod:memory.max": "max",
			"ctr:memory.max": "max",
		})
		out := sh(t, "cat /sys/fs/cgroup/kubepods/besteffort/cpu.weight /sys/fs/cgroup/kubepods/memory.max")
		lines := strings.Fields(out)
		if len(lines) < 2 || lines[len(lines)-2] != "1" {
			t.Errorf("besteffort cpu.weight and kubepods memory.max: %q", out)
		}
		// oom_score_adj by QoS class, read from the containers' processes.
		for name, want := range map[string]string{"e2e-guaranteed": "-997", "e2e-besteffort": "1000"} {
			uid := string(pod(t, name).UID)
			dir := "/kubepods/pod" + uid
			if name == "e2e-besteffort" {
				dir = "/kubepods/besteffort/pod" + uid
			}
			out := sh(t, fmt.Sprintf("cd /sys/fs/cgroup%s; for c in */; do read pid < $c/cgroup.procs; cat /proc/$pid/oom_score_adj; done", dir))
			if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
				t.Errorf("%s oom_score_adj: want %s\n%s", name, want, out)
			}
		}
	})

	t.Run("200m busy loop gets 0.2 CPU", func(t *testing.T) {
		p := pod(t, "e2e-spin")
		dir := "/sys/fs/cgroup/kubepods/burstable/pod" + string(p.UID)
		if p.Status.QOSClass == corev1.PodQOSGuaranteed {
			dir = "/sys/fs/cgroup/kubepods/pod" + string(p.UID)
		}
		// The shell's read builtin samples the clock and the counter
		// without starting a process, which takes long under TCG.
		m := b.MustShellMatch(t, fmt.Sprintf("cd %s; read u0 i < /proc/uptime; read k c0 < cpu.stat; sleep 5; read u1 i < /proc/uptime; read k c1 < cpu.stat; echo sample $u0 $c0 $u1 $c1", dir),
			regexp.MustCompile(`sample ([\d.]+) (\d+) ([\d.]+) (\d+)\n`))
		u0, _ := strconv.ParseFloat(m[1], 64)
		c0, _ := strconv.ParseFloat(m[2], 64)
		u1, _ := strconv.ParseFloat(m[3], 64)
		c1, _ := strconv.ParseFloat(m[4], 64)
		share := (c1 - c0) / 1e6 / (u1 - u0)
		t.Logf("two busy loops limited to 200m used %.4f CPU over %.2f s", share, u1-u0)
		if share < 0.19 || share > 0.21 {
			t.Errorf("CPU use %.4f, want 0.2 ± 5%%", share)
		}
	})

	t.Run("OOMKilled and restarted", func(t *testing.T) {
		deadline := time.Now().Add(PodsTimeout)
		for {
			p := pod(t, "e2e-oom")
			if cs := p.Status.ContainerStatuses; len(cs) == 1 && cs[0].RestartCount >= 1 {
				term := cs[0].LastTerminationState.Terminated
				if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
					t.Errorf("last termination %+v, want OOMKilled 137", term)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("e2e-oom not restarted after an OOM kill: %+v", p.Status)
			}
			time.Sleep(2 * time.Second)
		}
		deadline = time.Now().Add(PodsTimeout)
		for {
			p := pod(t, "e2e-child-oom")
			if p.Status.Phase == corev1.PodFailed {
				term := p.Status.ContainerStatuses[0].State.Terminated
				// memory.oom.group: the whole container goes, the shell too.
				if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
					t.Errorf("termination %+v, want OOMKilled 137", term)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("e2e-child-oom not Failed: %+v", p.Status)
			}
			time.Sleep(2 * time.Second)
		}
	})

	t.Run("oversized pod refused", func(t *testing.T) {
		p := pod(t, "e2e-huge")
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "OutOfmemory" {
			t.Errorf("e2e-huge: phase %s reason %q, want Failed OutOfmemory", p.Status.Phase, p.Status.Reason)
		}
	})

	t.Run("kubectl top and describe node", func(t *testing.T) {
		var out string
		var err error
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Second) {
			if out, err = b.Kubectl("top", "pod", "e2e-spin"); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("kubectl top pod: %v", err)
		}
		m := regexp.MustCompile(`(?m)^e2e-spin\s+(\d+)m\s+(\d+)Mi`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("kubectl top pod e2e-spin:\n%s", out)
		}
		if milli, _ := strconv.Atoi(m[1]); milli < 150 || milli > 250 {
			t.Errorf("kubectl top pod shows %sm for a 200m-limited loop:\n%s", m[1], out)
		}
		out, err = b.Kubectl("describe", "node")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`MemoryPressure\s+False`, `DiskPressure\s+False`, `(?m)^Allocatable:`, `e2e-burstable\s+100m \(\d+%\)\s+300m \(\d+%\)\s+32Mi \(\d+%\)\s+64Mi`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("kubectl describe node does not match %s:\n%s", want, out)
			}
		}
	})

	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}
