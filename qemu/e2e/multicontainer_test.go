package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// TestMultiContainerExamplesOnTheBoard runs the Kubernetes docs'
// multi-container examples (../shared/conformance/k8s-website/pods/
// multi-container, read in place) on the board with the stand-ins of their
// images, and checks them as a user would with kubectl: the sidecars
// (restartable init containers) run beside the app, the containers of a
// pod share its network namespace and its emptyDir volumes, and the pod's
// cgroup carries the requests Kubernetes computes for a pod with sidecars.
func TestMultiContainerExamplesOnTheBoard(t *testing.T) {
	s := setup(t)
	examples := testenv.ConformanceDir(t)
	dir := copyImage(t, s.qemuImage)
	fl := mustBeClean(t, dir)
	// The examples' images are tagged (imagePullPolicy IfNotPresent) and
	// not on the image: the board pulls them through a mirror on the
	// host's 127.0.0.1, which QEMU's user network shows the guest as
	// 10.0.2.2.
	pullThroughMirror(t, fl, mirrorArm64StandIns(t, "registry.k8s.io/busybox", "nginx"))
	for _, name := range []string{"adapter.yaml", "localhost.yaml", "resources.yaml", "shared-volume.yaml"} {
		b, err := os.ReadFile(filepath.Join(examples, "pods", "multi-container", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.WriteFile("/pods/multi-container_"+name, b); err != nil {
			t.Fatal(err)
		}
	}

	b := Boot(t, dir, Options{DebugShell: true, MemoryMiB: 2048})
	mustWaitAPI(t, b)

	get := func(t *testing.T, name string) (corev1.Pod, bool) {
		t.Helper()
		out, err := b.Kubectl("get", "pod", name, "-o", "json")
		if err != nil {
			return corev1.Pod{}, false
		}
		var p corev1.Pod
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatal(err)
		}
		return p, true
	}
	// up waits until the pod is Running and Ready with every container and
	// every sidecar running and ready.
	up := func(t *testing.T, name string) corev1.Pod {
		t.Helper()
		var p corev1.Pod
		for deadline := time.Now().Add(PodsTimeout); ; time.Sleep(2 * time.Second) {
			var ok bool
			if p, ok = get(t, name); ok && Running(p) && ready(p) && sidecarsRunning(p) {
				return p
			}
			if b.Exited() || time.Now().After(deadline) {
				t.Fatalf("%s: not Running and Ready with its sidecars within %s: %s\nthe agent's warnings:\n%s", name, PodsTimeout, describeAll(p), warnings(b.ConsoleText()))
			}
		}
	}
	// logs waits until kubectl logs of a container matches re.
	logs := func(t *testing.T, pod, container string, re *regexp.Regexp) string {
		t.Helper()
		var out string
		var err error
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			if out, err = b.Kubectl("logs", pod, "-c", container); err == nil && re.MatchString(out) {
				return out
			}
		}
		t.Fatalf("kubectl logs %s -c %s does not match %s within 2m: %q %v", pod, container, re, out, err)
		return ""
	}

	t.Run("adapter", func(t *testing.T) {
		p := up(t, "adapter-pattern-example")
		checkInit(t, p, "adapter", "running")
		// The adapter reads main-app's lines through the shared emptyDir
		// and prints each with its prefix.
		out := logs(t, "adapter-pattern-example", "adapter", regexp.MustCompile(`(?m)^adapted: .+ raw event$`))
		t.Logf("kubectl logs adapter-pattern-example -c adapter:\n%s", lastLines(out, 3))
	})

	t.Run("localhost", func(t *testing.T) {
		p := up(t, "localhost-example")
		checkInit(t, p, "client", "running")
		// The client sidecar fetches web's page on localhost:80: one
		// network namespace for the pod's containers. The page's first
		// four lines are the stand-in nginx's. (The stand-in busybox's
		// static-glibc wget crashes on remote addresses, see
		// testdata/network/e2e-client.yaml; on localhost it works.)
		out := logs(t, "localhost-example", "client", regexp.MustCompile(`(?m)^<title>Welcome to nginx!</title>$`))
		t.Logf("kubectl logs localhost-example -c client:\n%s", lastLines(out, 4))
	})

	t.Run("resources", func(t *testing.T) {
		p := up(t, "resources-example")
		checkInit(t, p, "setup", "Completed")
		checkInit(t, p, "log-shipper", "running")
		if p.Status.QOSClass != corev1.PodQOSBurstable {
			t.Errorf("qosClass %s, want Burstable", p.Status.QOSClass)
		}
		// The pod's requests as kubelet computes them (component-helpers
		// resource.PodRequests): the sidecar's add to the app's, 50m+300m
		// and 64Mi+128Mi, above the init container's 200m/64Mi. Its limits
		// (PodLimits) likewise: memory 64Mi+128Mi, no CPU limit.
		dir := "/sys/fs/cgroup/kubepods/burstable/pod" + string(p.UID)
		m := b.MustShellMatch(t, "cd "+dir+"; echo pod $(cat cpu.weight) $(cat cpu.max) $(cat memory.max); echo ctrs $(cat */memory.max)",
			regexp.MustCompile(`pod (\S+) (\S+ \S+) (\S+)\nctrs ([\d ]+)\n`))
		t.Logf("%s: cpu.weight %s, cpu.max %s, memory.max %s; its containers' memory.max: %s", dir, m[1], m[2], m[3], m[4])
		// 350m → 358 shares → weight 45 (runc's conversion, CPUWeight).
		if m[1] != "45" {
			t.Errorf("pod cgroup cpu.weight %s, want 45 (350m: the sidecar's 50m plus the app's 300m)", m[1])
		}
		if m[2] != "max 100000" {
			t.Errorf("pod cgroup cpu.max %q, want \"max 100000\" (no CPU limit)", m[2])
		}
		if m[3] != strconv.Itoa(192<<20) {
			t.Errorf("pod cgroup memory.max %s, want %d (192Mi: the sidecar's 64Mi plus the app's 128Mi)", m[3], 192<<20)
		}
		for _, want := range []int{64 << 20, 128 << 20} {
			if !strings.Contains(" "+m[4]+" ", " "+strconv.Itoa(want)+" ") {
				t.Errorf("no container cgroup with memory.max %d among %q (log-shipper 64Mi, app 128Mi)", want, m[4])
			}
		}
		out, err := b.Kubectl("describe", "node")
		if err != nil {
			t.Fatal(err)
		}
		if re := regexp.MustCompile(`resources-example\s+350m \(\d+%\)\s+0 \(0%\)\s+192Mi \(\d+%\)\s+192Mi \(\d+%\)`); !re.MatchString(out) {
			t.Errorf("kubectl describe node does not match %s:\n%s", re, out)
		}
	})

	t.Run("shared volume", func(t *testing.T) {
		p := up(t, "shared-volume-example")
		checkInit(t, p, "content-writer", "Completed")
		// web serves the page the init container wrote into the emptyDir;
		// the board fetches it on the pod's address on the bridge.
		out := b.MustShell(t, fmt.Sprintf("wget -O /tmp/shared http://%s:80/; cat /tmp/shared", p.Status.PodIP))
		if !regexp.MustCompile(`(?m)^Hello from the init container$`).MatchString(out) {
			t.Errorf("wget from the board to shared-volume-example at %s:80:\n%s", p.Status.PodIP, out)
		}
		t.Logf("wget http://%s:80/ from the board:\n%s", p.Status.PodIP, lastLines(out, 1))
	})

	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}

// ready reports whether the pod's Ready condition is True.
func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// sidecarsRunning reports whether every restartable init container of the
// pod is running and ready.
func sidecarsRunning(p corev1.Pod) bool {
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			continue
		}
		cs := initStatus(p, c.Name)
		if cs == nil || cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}

func initStatus(p corev1.Pod, name string) *corev1.ContainerStatus {
	for i, cs := range p.Status.InitContainerStatuses {
		if cs.Name == name {
			return &p.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

// checkInit checks an init container's state: "running" (a sidecar,
// running and ready) or a terminated reason with exit code 0.
func checkInit(t *testing.T, p corev1.Pod, name, want string) {
	t.Helper()
	cs := initStatus(p, name)
	switch {
	case cs == nil:
		t.Errorf("%s: no status for init container %s: %s", p.Name, name, describeAll(p))
	case want == "running":
		if cs.State.Running == nil || !cs.Ready {
			t.Errorf("%s: sidecar %s not running and ready: %s", p.Name, name, describeAll(p))
		}
	default:
		if term := cs.State.Terminated; term == nil || term.Reason != want || term.ExitCode != 0 {
			t.Errorf("%s: init container %s: %+v, want terminated %s with exit code 0", p.Name, name, cs.State, want)
		}
	}
}

// describeAll is describe with the init containers' states first.
func describeAll(p corev1.Pod) string {
	var s []string
	for _, cs := range p.Status.InitContainerStatuses {
		switch {
		case cs.State.Running != nil:
			s = append(s, fmt.Sprintf("init %s:running(ready=%t,restarts=%d)", cs.Name, cs.Ready, cs.RestartCount))
		case cs.State.Waiting != nil:
			s = append(s, fmt.Sprintf("init %s:waiting(%s: %s)", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			s = append(s, fmt.Sprintf("init %s:terminated(%s, %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
		}
	}
	return strings.Join(append(s, describe(p)), " ")
}
