package e2e

import (
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

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// TestResourceExamplesOnTheBoard runs the Kubernetes docs' resource and
// QoS examples (../shared/conformance/k8s-website/pods/resource and
// pods/qos, read in place) on the board's cgroup v2, with the stand-ins of
// their images, and checks what the docs pages describe. They run in two
// rounds so that each round's requests fit the board's allocatable and
// only one CPU hog runs at a time: the second round's manifests wait on
// the flash and are moved into pods/ from the debug shell.
func TestResourceExamplesOnTheBoard(t *testing.T) {
	s := setup(t)
	examples := testenv.ConformanceDir(t)
	dir := copyImage(t, s.qemuImage)
	fl := mustBeClean(t, dir)
	// Untagged images are pulled every time (imagePullPolicy Always), as
	// on a cluster: the board pulls them through a mirror on the host's
	// 127.0.0.1, which QEMU's user network shows the guest as 10.0.2.2.
	pullThroughMirror(t, fl, mirrorArm64StandIns(t, "polinux/stress", "vish/stress", "nginx", "redis"))
	if _, err := fl.debugfs(true, "mkdir /staged"); err != nil {
		t.Fatal(err)
	}
	put := func(dest string, rels ...string) {
		for _, rel := range rels {
			b, err := os.ReadFile(filepath.Join(examples, rel))
			if err != nil {
				t.Fatal(err)
			}
			if err := fl.WriteFile(dest+"/"+strings.ReplaceAll(rel, "/", "_"), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	round1 := []string{
		"pods/resource/cpu-request-limit.yaml", "pods/resource/cpu-request-limit-2.yaml",
		"pods/resource/memory-request-limit.yaml", "pods/resource/memory-request-limit-2.yaml", "pods/resource/memory-request-limit-3.yaml",
		"pods/qos/qos-pod.yaml", "pods/qos/qos-pod-2.yaml", "pods/qos/qos-pod-3.yaml", "pods/qos/qos-pod-4.yaml",
	}
	round2 := []string{"pods/resource/pod-level-cpu-request-limit.yaml", "pods/resource/pod-level-memory-request-limit.yaml", "pods/qos/qos-pod-5.yaml"}
	put("/pods", round1...)
	put("/staged", round2...)

	b := Boot(t, dir, Options{DebugShell: true, MemoryMiB: 2048})
	mustWaitAPI(t, b)

	sh := b.MustShell // the calling (sub)test's: FailNow stops that one
	get := func(t *testing.T, ns, name string) (corev1.Pod, bool) {
		t.Helper()
		out, err := b.Kubectl("get", "pod", "-n", ns, name, "-o", "json")
		if err != nil {
			return corev1.Pod{}, false
		}
		var p corev1.Pod
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		return p, true
	}
	wait := func(t *testing.T, ns, name, what string, cond func(corev1.Pod) bool) corev1.Pod {
		t.Helper()
		var p corev1.Pod
		for deadline := time.Now().Add(PodsTimeout); ; time.Sleep(2 * time.Second) {
			var ok bool
			if p, ok = get(t, ns, name); ok && cond(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/%s: not %s within %s: %s", ns, name, what, PodsTimeout, describe(p))
			}
		}
	}
	qos := func(t *testing.T, ns, name string, want corev1.PodQOSClass) {
		t.Helper()
		p := wait(t, ns, name, "Running", Running)
		if p.Status.QOSClass != want {
			t.Errorf("%s/%s: qosClass %s, want %s", ns, name, p.Status.QOSClass, want)
		}
	}
	rejected := func(t *testing.T, ns, name, reason string) {
		t.Helper()
		p := wait(t, ns, name, "Failed", func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if p.Status.Reason != reason {
			t.Errorf("%s/%s: reason %q, want %q (a cluster's scheduler would leave it Pending; kubelet refuses it)", ns, name, p.Status.Reason, reason)
		}
	}
	podCgroup := func(p corev1.Pod) string {
		switch p.Status.QOSClass {
		case corev1.PodQOSGuaranteed:
			return "/sys/fs/cgroup/kubepods/pod" + string(p.UID)
		case corev1.PodQOSBurstable:
			return "/sys/fs/cgroup/kubepods/burstable/pod" + string(p.UID)
		}
		return "/sys/fs/cgroup/kubepods/besteffort/pod" + string(p.UID)
	}
	// capped: over 5 s the pod's processes use at most its 1 CPU limit,
	// and the quota is what holds them (throttled periods grow); read
	// with the shell's builtins so no process start skews the sample.
	capped := func(t *testing.T, p corev1.Pod) {
		t.Helper()
		m := b.MustShellMatch(t, fmt.Sprintf("cd %s; read u0 i < /proc/uptime; while read k v; do eval s0_$k=$v; done < cpu.stat; sleep 5; read u1 i < /proc/uptime; while read k v; do eval s1_$k=$v; done < cpu.stat; echo sample $u0 $s0_usage_usec $s0_nr_throttled $u1 $s1_usage_usec $s1_nr_throttled; read q p < cpu.max; echo cpu.max $q $p", podCgroup(p)),
			regexp.MustCompile(`sample ([\d.]+) (\d+) (\d+) ([\d.]+) (\d+) (\d+)\ncpu\.max (\S+ \S+)`))
		f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
		share := (f(5) - f(2)) / 1e6 / (f(4) - f(1))
		throttled := f(6) - f(3)
		t.Logf("%s/%s used %.3f CPU over %.2f s, throttled in %.0f periods; cpu.max %s", p.Namespace, p.Name, share, f(4)-f(1), throttled, m[7])
		if share > 1.05 {
			t.Errorf("%s/%s used %.3f CPU, over its 1 CPU limit", p.Namespace, p.Name, share)
		}
		if throttled < 1 {
			t.Errorf("%s/%s was never throttled while spinning two loops against a 1 CPU limit", p.Namespace, p.Name)
		}
	}

	t.Run("round 1", func(t *testing.T) {
		t.Run("qos-pod Guaranteed", func(t *testing.T) { qos(t, "qos-example", "qos-demo", corev1.PodQOSGuaranteed) })
		t.Run("qos-pod-2 Burstable", func(t *testing.T) { qos(t, "qos-example", "qos-demo-2", corev1.PodQOSBurstable) })
		t.Run("qos-pod-3 BestEffort", func(t *testing.T) { qos(t, "qos-example", "qos-demo-3", corev1.PodQOSBestEffort) })
		t.Run("qos-pod-4 Burstable", func(t *testing.T) { qos(t, "qos-example", "qos-demo-4", corev1.PodQOSBurstable) })
		t.Run("cpu-request-limit capped at 1 CPU", func(t *testing.T) {
			capped(t, wait(t, "cpu-example", "cpu-demo", "Running", Running))
		})
		t.Run("cpu-request-limit-2 refused", func(t *testing.T) { rejected(t, "cpu-example", "cpu-demo-2", "OutOfcpu") })
		t.Run("memory-request-limit uses ~150M under its 200Mi", func(t *testing.T) {
			p := wait(t, "mem-example", "memory-demo", "Running", Running)
			var cur int64
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
				out := sh(t, "cat "+podCgroup(p)+"/memory.current")
				if m := regexp.MustCompile(`(?m)^(\d+)$`).FindStringSubmatch(out); m != nil {
					cur, _ = strconv.ParseInt(m[1], 10, 64)
				}
				if cur > 100<<20 {
					break
				}
			}
			if cur < 100<<20 || cur > 200<<20 {
				t.Errorf("memory-demo's pod cgroup uses %d bytes, want about 150M (between 100Mi and its 200Mi limit)", cur)
			}
		})
		t.Run("memory-request-limit-2 OOMKilled and restarted", func(t *testing.T) {
			p := wait(t, "mem-example", "memory-demo-2", "restarted", func(p corev1.Pod) bool {
				return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
			})
			term := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
			if term == nil || term.Reason != "OOMKilled" {
				t.Errorf("memory-demo-2 last termination %+v, want reason OOMKilled", term)
			}
		})
		t.Run("memory-request-limit-3 refused", func(t *testing.T) { rejected(t, "mem-example", "memory-demo-3", "OutOfmemory") })
	})

	// Round 2: the first round's pods go, the second's come, as a user
	// editing the flash in place would do it.
	var names []string
	for _, rel := range round1 {
		names = append(names, "/flash/pods/"+strings.ReplaceAll(rel, "/", "_"))
	}
	sh(t, "rm "+strings.Join(names, " ")+"; mv /flash/staged/* /flash/pods/")

	t.Run("round 2", func(t *testing.T) {
		t.Run("qos-pod-5 Guaranteed", func(t *testing.T) { qos(t, "qos-example", "qos-demo-5", corev1.PodQOSGuaranteed) })
		t.Run("pod-level cpu capped at 1 CPU", func(t *testing.T) {
			p := wait(t, "pod-resources-example", "cpu-demo", "Running", Running)
			if p.Status.QOSClass != corev1.PodQOSBurstable {
				t.Errorf("qosClass %s, want Burstable", p.Status.QOSClass)
			}
			capped(t, p)
		})
		t.Run("pod-level memory limit on the pod cgroup", func(t *testing.T) {
			// Its container is nginx with command stress, which the nginx
			// image lacks (kubernetes/website#52441): kubelet reports
			// StartError; the pod's cgroup still carries the pod's limit.
			p := wait(t, "pod-resources-example", "memory-demo", "started", func(p corev1.Pod) bool {
				return len(p.Status.ContainerStatuses) == 1 && (p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil || p.Status.ContainerStatuses[0].State.Terminated != nil)
			})
			if p.Status.QOSClass != corev1.PodQOSBurstable {
				t.Errorf("qosClass %s, want Burstable", p.Status.QOSClass)
			}
			out := sh(t, "cat "+podCgroup(p)+"/memory.max")
			if !regexp.MustCompile(`(?m)^209715200$`).MatchString(out) {
				t.Errorf("memory-demo pod cgroup memory.max: %q, want 209715200 (200Mi)", out)
			}
		})
	})

	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}

// pullThroughMirror makes the board pull every image through the mirror at
// host (on the host's 127.0.0.1, which QEMU's user network shows the guest
// as 10.0.2.2), added to the flash's device.yaml.
func pullThroughMirror(t *testing.T, fl Flash, host string) {
	t.Helper()
	_, port, _ := strings.Cut(host, ":")
	device, err := fl.ReadFile("/device.yaml")
	if err != nil {
		device = nil // the image has none: the defaults
	}
	device = append(device, []byte(fmt.Sprintf("\nregistries:\n  mirrors:\n    \"*\":\n      endpoint: [\"http://10.0.2.2:%s\"]\n", port))...)
	if err := fl.WriteFile("/device.yaml", device); err != nil {
		t.Fatal(err)
	}
}

// mirrorArm64StandIns serves the arm64 stand-ins of repos from a registry
// on 127.0.0.1 under their upstream paths (docker.io/library/nginx as
// library/nginx), and returns its host:port.
func mirrorArm64StandIns(t *testing.T, repos ...string) string {
	t.Helper()
	// ExampleImages fetches and unpacks the arm64 busybox-static the
	// stand-ins are made of into the builder's cache.
	if err := ExampleImages(t.TempDir(), repos...); err != nil {
		t.Fatal(err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	busyboxes, _ := filepath.Glob(filepath.Join(root, ".cache", "arm64", "extract", "busybox-static_*", "bin", "busybox"))
	if len(busyboxes) == 0 {
		t.Fatal("no arm64 busybox-static in .cache after example-images")
	}
	var specs []imagebuild.Spec
	for _, spec := range imagebuild.StandIns("arm64", busyboxes[len(busyboxes)-1]) {
		if repo, _, _ := strings.Cut(spec.Tags[0], ":"); slices.Contains(repos, repo) {
			specs = append(specs, spec)
		}
	}
	return testenv.Mirror(t, specs)
}
