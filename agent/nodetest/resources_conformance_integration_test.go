package nodetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationResourceExamples runs the website's resource examples
// (tasks/configure-pod-container/assign-cpu-resource, assign-memory-resource,
// assign-pod-level-resources, quality-service-pod and resize-container-resources
// for qos-pod-5) unchanged, read in place, and checks what those pages say
// happens. The pages assume a cluster; what a kubelet with static pods does
// instead (admission rejects what the scheduler would leave Pending) is
// said where it is checked.
//
// The examples run in groups, one after the other, each group's manifests
// removed before the next: together they request 2.4 CPUs and the node has
// 2 minus 100m system-reserved, and a CPU-cap measurement must not share the
// two cores with another spinning pod.
func TestIntegrationResourceExamples(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	dir := testenv.ConformanceDir(t)
	host := mirrorRegistry(t)
	n := startNode(t, func(flash string) {
		device := fmt.Sprintf("registries:\n  mirrors:\n    \"*\":\n      endpoint: [\"http://%s\"]\n", host)
		if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(device), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	// group writes the examples' manifests (as they are, from the
	// conformance folder) and, when the group's subtests are done, removes
	// them and waits until their pods are gone.
	group := func(t *testing.T, examples ...resExample) {
		for _, e := range examples {
			b, err := os.ReadFile(filepath.Join(dir, e.file))
			if err != nil {
				t.Fatal(err)
			}
			n.writeManifest(e.manifest(), string(b))
		}
		t.Cleanup(func() {
			for _, e := range examples {
				if err := os.Remove(filepath.Join(n.flash, "pods", e.manifest())); err != nil {
					t.Error(err)
				}
			}
			for _, e := range examples {
				resWaitGone(t, n, e.ns, e.name, 2*time.Minute)
			}
		})
	}

	t.Run("quality-service-pod", func(t *testing.T) {
		examples := []struct {
			resExample
			class corev1.PodQOSClass
		}{
			{resExample{"pods/qos/qos-pod.yaml", "qos-example", "qos-demo"}, corev1.PodQOSGuaranteed},
			{resExample{"pods/qos/qos-pod-2.yaml", "qos-example", "qos-demo-2"}, corev1.PodQOSBurstable},
			{resExample{"pods/qos/qos-pod-3.yaml", "qos-example", "qos-demo-3"}, corev1.PodQOSBestEffort},
			{resExample{"pods/qos/qos-pod-4.yaml", "qos-example", "qos-demo-4"}, corev1.PodQOSBurstable},
			// resize-container-resources: "This pod is classified as a
			// Guaranteed QoS class requesting 700m CPU and 200Mi memory."
			// (The page's resizePolicy defaults are the API server's.)
			{resExample{"pods/qos/qos-pod-5.yaml", "qos-example", "qos-demo-5"}, corev1.PodQOSGuaranteed},
		}
		var all []resExample
		for _, e := range examples {
			all = append(all, e.resExample)
		}
		group(t, all...)
		for _, e := range examples {
			t.Run(e.name, func(t *testing.T) {
				p := n.waitPodIn(t, e.ns, e.name, 3*time.Minute, "Running", running)
				if p.Status.QOSClass != e.class {
					t.Errorf("status.qosClass = %q, want %q", p.Status.QOSClass, e.class)
				}
				// kubelet's cgroupfs layout (pkg/kubelet/cm/qos_container_manager_linux.go):
				// Guaranteed pods directly under kubepods, the others under
				// their class's cgroup.
				pod := resPodCgroup(t, "memory", p.UID, time.Minute)
				parent := filepath.Base(filepath.Dir(pod))
				want := map[corev1.PodQOSClass]string{corev1.PodQOSGuaranteed: "kubepods", corev1.PodQOSBurstable: "burstable", corev1.PodQOSBestEffort: "besteffort"}[e.class]
				if parent != want {
					t.Errorf("pod cgroup %s: parent %q, want %q", pod, parent, want)
				}
			})
		}
	})

	t.Run("assign-cpu-resource", func(t *testing.T) {
		demo := resExample{"pods/resource/cpu-request-limit.yaml", "cpu-example", "cpu-demo"}
		demo2 := resExample{"pods/resource/cpu-request-limit-2.yaml", "cpu-example", "cpu-demo-2"}
		group(t, demo, demo2)
		t.Run("cpu-demo runs capped at its 1 CPU limit", func(t *testing.T) {
			p := n.waitPodIn(t, demo.ns, demo.name, 3*time.Minute, "Running", running)
			if p.Status.QOSClass != corev1.PodQOSBurstable {
				t.Errorf("status.qosClass = %q, want Burstable", p.Status.QOSClass)
			}
			// Every container has a CPU limit, so kubelet puts their sum
			// on the pod cgroup too (pkg/kubelet/cm/helpers_linux.go).
			pod := resPodCgroup(t, "cpu", p.UID, time.Minute)
			if got := resCgroupInt(t, pod, "cpu.cfs_quota_us"); got != 100000 {
				t.Errorf("%s/cpu.cfs_quota_us = %d, want 100000", pod, got)
			}
			resCheckProcsIn(t, pod)
			// The stand-in spins two loops on this 2-core host; the page
			// shows kubectl top at 974m, "slightly less than the limit".
			resCheckCPUCap(t, n, demo, "cpu-demo-ctr")
			resCheckTopCPU(t, n, demo)
		})
		t.Run("cpu-demo-2 asks for 100 CPUs", func(t *testing.T) {
			// On a cluster the scheduler leaves it Pending ("0/1 nodes are
			// available: 1 Insufficient cpu"). A kubelet given a static pod
			// has no scheduler in front of it: its admission
			// (pkg/kubelet/lifecycle/predicate.go) rejects the pod, which
			// is Failed with reason OutOfcpu and never started.
			p := n.waitPodIn(t, demo2.ns, demo2.name, 2*time.Minute, "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
			if p.Status.Reason != "OutOfcpu" || !strings.HasPrefix(p.Status.Message, "Pod was rejected: Node didn't have enough resource: cpu, requested: 100000, ") {
				t.Errorf("reason %q message %q; want OutOfcpu, Pod was rejected: Node didn't have enough resource: cpu, requested: 100000, ...", p.Status.Reason, p.Status.Message)
			}
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Running != nil || cs.RestartCount != 0 {
					t.Errorf("rejected pod's container %s ran: %+v", cs.Name, cs)
				}
			}
			// The pod beside it keeps running.
			d, ok := n.getPod(demo.ns, demo.name)
			if !ok || !running(d) || d.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("cpu-demo after cpu-demo-2's rejection: %s", resJSON(d))
			}
		})
	})

	t.Run("assign-memory-resource", func(t *testing.T) {
		demo := resExample{"pods/resource/memory-request-limit.yaml", "mem-example", "memory-demo"}
		demo2 := resExample{"pods/resource/memory-request-limit-2.yaml", "mem-example", "memory-demo-2"}
		demo3 := resExample{"pods/resource/memory-request-limit-3.yaml", "mem-example", "memory-demo-3"}
		group(t, demo, demo2, demo3)
		t.Run("memory-demo uses about 150 MiB within its 200 MiB limit", func(t *testing.T) {
			p := n.waitPodIn(t, demo.ns, demo.name, 3*time.Minute, "Running", running)
			// kubelet's pod cgroup limit is the sum of the containers'
			// limits when each has one (pkg/kubelet/cm/helpers_linux.go).
			pod := resPodCgroup(t, "memory", p.UID, time.Minute)
			if got := resCgroupInt(t, pod, "memory.limit_in_bytes"); got != 200<<20 {
				t.Errorf("%s/memory.limit_in_bytes = %d, want %d", pod, got, 200<<20)
			}
			// The page: "about 162,900,000 bytes of memory, which is about
			// 150 MiB ... greater than the Container's 100 MiB request, but
			// within the Container's 200 MiB limit".
			resCheckTopMemory(t, n, demo, 100, 200)
		})
		t.Run("memory-demo-2 exceeds its limit and is OOMKilled", func(t *testing.T) {
			// The page: the Container is killed (OOMKilled), restarted by
			// the kubelet, killed again: lastState terminated with reason
			// OOMKilled, then CrashLoopBackOff.
			oom := func(s corev1.ContainerState) bool { return s.Terminated != nil && s.Terminated.Reason == "OOMKilled" }
			p := n.waitPodIn(t, demo2.ns, demo2.name, 3*time.Minute, "OOMKilled and restarted", func(p *corev1.Pod) bool {
				cs := containerStatus(p, "memory-demo-2-ctr")
				return cs != nil && cs.RestartCount >= 1 && (oom(cs.LastTerminationState) || oom(cs.State))
			})
			if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
				t.Errorf("phase %q: restartPolicy Always keeps restarting it", p.Status.Phase)
			}
			n.waitPodIn(t, demo2.ns, demo2.name, 3*time.Minute, "CrashLoopBackOff", func(p *corev1.Pod) bool {
				cs := containerStatus(p, "memory-demo-2-ctr")
				return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && oom(cs.LastTerminationState)
			})
			if out, err := n.kubectl("get", "pod", demo2.name, "-n", demo2.ns); err != nil || !regexp.MustCompile(`(?m)^memory-demo-2\s+0/1\s+(OOMKilled|CrashLoopBackOff)\s+[1-9]`).MatchString(out) {
				t.Errorf("kubectl get pod memory-demo-2 (%v):\n%s", err, out)
			}
		})
		t.Run("memory-demo-3 asks for 1000Gi", func(t *testing.T) {
			// On a cluster: Pending, "0/1 nodes are available: 1
			// Insufficient memory". A kubelet's admission rejects it.
			p := n.waitPodIn(t, demo3.ns, demo3.name, 2*time.Minute, "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
			if p.Status.Reason != "OutOfmemory" || !strings.HasPrefix(p.Status.Message, "Pod was rejected: Node didn't have enough resource: memory, requested: 1073741824000, ") {
				t.Errorf("reason %q message %q; want OutOfmemory, Pod was rejected: Node didn't have enough resource: memory, requested: 1073741824000, ...", p.Status.Reason, p.Status.Message)
			}
			if d, ok := n.getPod(demo.ns, demo.name); !ok || !running(d) {
				t.Errorf("memory-demo after memory-demo-3's rejection: %s", resJSON(d))
			}
		})
	})

	t.Run("assign-pod-level-resources", func(t *testing.T) {
		cpu := resExample{"pods/resource/pod-level-cpu-request-limit.yaml", "pod-resources-example", "cpu-demo"}
		mem := resExample{"pods/resource/pod-level-memory-request-limit.yaml", "pod-resources-example", "memory-demo"}
		group(t, cpu, mem)
		t.Run("cpu-demo", func(t *testing.T) {
			p := n.waitPodIn(t, cpu.ns, cpu.name, 3*time.Minute, "Running", running)
			// Pod-level requests 500m, limits 1: Burstable (pod-level
			// resources decide the class, pkg/apis/core/v1/helper/qos).
			if p.Status.QOSClass != corev1.PodQOSBurstable {
				t.Errorf("status.qosClass = %q, want Burstable", p.Status.QOSClass)
			}
			// The container has no limit of its own: only the pod cgroup
			// holds it to 1 CPU (100ms per 100ms period).
			pod := resPodCgroup(t, "cpu", p.UID, time.Minute)
			if got := resCgroupInt(t, pod, "cpu.cfs_quota_us"); got != 100000 {
				t.Errorf("%s/cpu.cfs_quota_us = %d, want 100000", pod, got)
			}
			if got := resCgroupInt(t, pod, "cpu.cfs_period_us"); got != 100000 {
				t.Errorf("%s/cpu.cfs_period_us = %d, want 100000", pod, got)
			}
			resCheckProcsIn(t, pod)
			// The page: kubectl top shows 974m, "slightly less than the
			// limit of 1 CPU".
			resCheckCPUCap(t, n, cpu, "cpu-demo-ctr")
			resCheckTopCPU(t, n, cpu)
		})
		t.Run("memory-demo", func(t *testing.T) {
			// The page says "Verify that the Pod is running" and shows
			// kubectl top at about 150 MiB, but its manifest runs `stress`
			// in the nginx image, which has no stress
			// (kubernetes/website#52441): a kubelet on containerd and runc
			// fails the start, StartError with runc's message and exit code
			// 128, and backs off. The stand-in nginx has no stress either,
			// so the check is that failure, as kubelet reports it, and what
			// the page says of the pod itself: its 200 MiB pod-level limit
			// on the pod's cgroup (the sandbox runs in it) and its class.
			startError := func(s corev1.ContainerState) bool {
				return s.Terminated != nil && s.Terminated.Reason == "StartError" && s.Terminated.ExitCode == 128 &&
					strings.Contains(s.Terminated.Message, `exec: "stress": executable file not found in $PATH`)
			}
			p := n.waitPodIn(t, mem.ns, mem.name, 3*time.Minute, "StartError, then CrashLoopBackOff", func(p *corev1.Pod) bool {
				cs := containerStatus(p, "memory-demo-ctr")
				return cs != nil && cs.RestartCount >= 1 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && startError(cs.LastTerminationState)
			})
			if p.Status.QOSClass != corev1.PodQOSBurstable {
				t.Errorf("status.qosClass = %q, want Burstable", p.Status.QOSClass)
			}
			pod := resPodCgroup(t, "memory", p.UID, time.Minute)
			if got := resCgroupInt(t, pod, "memory.limit_in_bytes"); got != 200<<20 {
				t.Errorf("%s/memory.limit_in_bytes = %d, want %d", pod, got, 200<<20)
			}
			// The pod beside it runs on.
			if c, ok := n.getPod(cpu.ns, cpu.name); !ok || !running(c) {
				t.Errorf("pod-resources-example/cpu-demo: %s", resJSON(c))
			}
		})
	})
}

// resExample is one website example: its file under the conformance
// folder and the pod it makes.
type resExample struct{ file, ns, name string }

// manifest is the example's file name on the flash: its path, flattened,
// since two examples share a base name's pod names in other namespaces.
func (e resExample) manifest() string { return strings.ReplaceAll(e.file, "/", "_") }

func resWaitGone(t *testing.T, n *node, ns, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, ok := n.getPod(ns, name); !ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("pod %s/%s still present %v after its manifest was removed", ns, name, timeout)
}

func resJSON(p *corev1.Pod) string {
	b, _ := json.MarshalIndent(p, "", "  ")
	return string(b)
}

// resPodCgroup finds the pod's cgroup, named pod<uid> as kubelet names it,
// anywhere in the host's cgroup v1 hierarchy (the node's cgroup root is
// devnode's choice).
func resPodCgroup(t *testing.T, hierarchy string, uid types.UID, timeout time.Duration) string {
	t.Helper()
	root := filepath.Join("/sys/fs/cgroup", hierarchy)
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		testenv.Unavailable(t, "needs the cgroup v1 %s hierarchy at %s: %v", hierarchy, root, err)
	}
	want := "pod" + string(uid)
	found := errors.New("found")
	deadline := time.Now().Add(timeout)
	for {
		var dir string
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a cgroup removed while walking
			}
			if d.IsDir() && d.Name() == want {
				dir = p
				return found
			}
			return nil
		})
		if dir != "" {
			return dir
		}
		if err != nil && err != found {
			t.Fatalf("walk %s: %v", root, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cgroup %s under %s within %v: pod cgroups are not made", want, root, timeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func resCgroupInt(t *testing.T, dir, file string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s/%s: %v", dir, file, err)
	}
	return v
}

// resCheckProcsIn checks that the pod's processes run inside its cgroup:
// the processes in the container cgroups below it name it in the host's
// /proc/<pid>/cgroup.
func resCheckProcsIn(t *testing.T, pod string) {
	t.Helper()
	hierarchy := strings.Split(strings.TrimPrefix(pod, "/sys/fs/cgroup/"), "/")[0]
	rel := strings.TrimPrefix(pod, filepath.Join("/sys/fs/cgroup", hierarchy))
	var pids []string
	_ = filepath.WalkDir(pod, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != pod {
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			pids = append(pids, strings.Fields(string(b))...)
		}
		return nil
	})
	if len(pids) == 0 {
		t.Fatalf("no processes in the container cgroups under %s", pod)
	}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
		if err != nil {
			continue // exited
		}
		if !regexp.MustCompile(`(?m)^\d+:[^:]*\b` + hierarchy + `\b[^:]*:` + regexp.QuoteMeta(rel) + `/`).Match(b) {
			t.Errorf("process %s is not under %s:\n%s", pid, rel, b)
		}
	}
}

// resCPUSeconds is the example's container's container_cpu_usage_seconds_total
// in a scrape of /metrics.
func resCPUSeconds(t *testing.T, n *node, e resExample, container string) float64 {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, "container_cpu_usage_seconds_total{") {
			continue
		}
		if !strings.Contains(l, `container="`+container+`"`) || !strings.Contains(l, `namespace="`+e.ns+`"`) || !strings.Contains(l, `pod="`+e.name+`"`) {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", l, err)
		}
		return v
	}
	t.Fatalf("/metrics has no container_cpu_usage_seconds_total for %s/%s %s:\n%s", e.ns, e.name, container, grep(string(body), "container_cpu_usage"))
	return 0
}

// resCheckCPUCap measures the container's CPU use over 5-second windows
// from /metrics. No window may exceed the 1 CPU limit (with 10 % for the
// scrape's timing), and the two spinning loops must reach 0.8 CPU in one of
// them. The host is shared (2 cores; `make test` runs other packages, and
// their VMs, beside this one), so a window below 0.8 CPU is a failure only
// if the host left more CPU idle in it than the loops took: a quota lower
// than the limit. When every window found the host saturated, the
// use could not be measured against the limit and the test says so; the
// quota itself is checked on the cgroup files.
func resCheckCPUCap(t *testing.T, n *node, e resExample, container string) {
	t.Helper()
	var rates, idles []float64
	for i := 0; i < 6; i++ {
		t0, c0, idle0 := time.Now(), resCPUSeconds(t, n, e, container), resHostIdle(t)
		time.Sleep(5 * time.Second)
		t1, c1, idle1 := time.Now(), resCPUSeconds(t, n, e, container), resHostIdle(t)
		secs := t1.Sub(t0).Seconds()
		r, idle := (c1-c0)/secs, (idle1-idle0)/secs
		rates, idles = append(rates, r), append(idles, idle)
		if r > 1.1 {
			t.Fatalf("%s/%s uses %.2f CPU over %.1fs, above its 1 CPU limit (windows so far %.2f)", e.ns, e.name, r, secs, rates)
		}
		if i == 0 {
			continue // the first window may straddle the container's start
		}
		if r >= 0.8 {
			return
		}
		// With a 1 CPU quota the host has a CPU idle only while the two
		// loops run at that quota, so idle time cannot exceed the
		// container's (0.2 for scheduling and sampling slop). More idle
		// than that is a quota below the limit.
		if idle > r+0.2 {
			t.Errorf("%s/%s used %.2f CPU over %.1fs while the host left %.2f CPU idle: held below its 1 CPU limit", e.ns, e.name, r, secs, idle)
			return
		}
	}
	t.Logf("%s/%s: host saturated by other work in every window (CPU used %.2f, host idle %.2f): the 1 CPU cap could not be approached", e.ns, e.name, rates, idles)
}

// resHostIdle is the host's idle and iowait CPU time in seconds
// (/proc/stat's cpu line, in USER_HZ = 100 ticks a second).
func resHostIdle(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	if len(f) < 6 || f[0] != "cpu" {
		t.Fatalf("/proc/stat first line %q", f)
	}
	idle, _ := strconv.ParseFloat(f[4], 64)
	iowait, _ := strconv.ParseFloat(f[5], 64)
	return (idle + iowait) / 100
}

// resCheckTopCPU runs the page's `kubectl top pod`: the CPU column must
// stay within the 1 CPU limit (1100m, for the sampling window) and show the
// pod busy; how close to the limit it gets is resCheckCPUCap's measure, on
// a host other tests share.
func resCheckTopCPU(t *testing.T, n *node, e resExample) {
	t.Helper()
	var out string
	for i := 0; i < 10; i++ {
		out = n.mustKubectl("top", "pod", e.name, "--namespace="+e.ns)
		m := regexp.MustCompile(`(?m)^` + e.name + `\s+(\d+m?)\s+\S+\s*$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("kubectl top pod %s:\n%s", e.name, out)
		}
		c := milli(t, m[1])
		if c > 1100 {
			t.Fatalf("kubectl top pod %s: %dm CPU, above the 1 CPU limit:\n%s", e.name, c, out)
		}
		if c >= 100 {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Errorf("kubectl top pod %s never showed the pod busy (100m–1100m CPU):\n%s", e.name, out)
}

// resCheckTopMemory runs the page's `kubectl top pod` and wants the
// MEMORY column between lowMi and highMi once the stress buffer is filled.
func resCheckTopMemory(t *testing.T, n *node, e resExample, lowMi, highMi int) {
	t.Helper()
	var out string
	deadline := time.Now().Add(time.Minute)
	for {
		out = n.mustKubectl("top", "pod", e.name, "--namespace="+e.ns)
		m := regexp.MustCompile(`(?m)^` + e.name + `\s+\S+\s+(\d+)Mi\s*$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("kubectl top pod %s:\n%s", e.name, out)
		}
		mi, _ := strconv.Atoi(m[1])
		if mi > highMi {
			t.Fatalf("kubectl top pod %s: %dMi, above the %dMi limit:\n%s", e.name, mi, highMi, out)
		}
		if mi >= lowMi {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl top pod %s: %dMi, want %d–%dMi (the 150M stress buffer):\n%s", e.name, mi, lowMi, highMi, out)
		}
		time.Sleep(time.Second)
	}
}
