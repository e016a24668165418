package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// e2eReadiness is a pod whose readiness probe fails until a file exists:
// the READY column's flip, which no docs example shows on its own.
const e2eReadiness = `apiVersion: v1
kind: Pod
metadata: {name: e2e-readiness}
spec:
  containers:
  - name: app
    image: registry.k8s.io/busybox:1.27.2
    args: [/bin/sh, -c, "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"]
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 2
`

// TestProbesOnTheBoard puts the Kubernetes docs' exec-liveness and
// lifecycle-demo examples (../shared/conformance/k8s-website/pods, read in
// place) and a pod with a failing readiness probe on the board's flash,
// boots, and checks with kubectl what the docs say: lifecycle-demo's
// postStart handler wrote its message before the container ran, the
// readiness probe holds the pod at 0/1 (Ready False, ContainersNotReady)
// until it passes, and exec-liveness is killed by its liveness probe after
// 30 s healthy and restarted (RESTARTS 1, kubelet's events). It boots its
// own copy of the image beside the other parallel tests; about 3 minutes,
// most of it exec-liveness's 30 s of health, three failures and 30 s of
// grace (busybox sh ignores SIGTERM).
func TestProbesOnTheBoard(t *testing.T) {
	t.Parallel()
	s := setup(t)
	examples := testenv.ConformanceDir(t)
	dir := copyImage(t, s.qemuImage)
	fl := mustBeClean(t, dir)
	// Both images are pulled: registry.k8s.io/busybox:1.27.2 is not on
	// the image, nginx is untagged (imagePullPolicy Always).
	pullThroughMirror(t, fl, mirrorArm64StandIns(t, "registry.k8s.io/busybox", "nginx"))
	for _, rel := range []string{"pods/probe/exec-liveness.yaml", "pods/lifecycle-events.yaml"} {
		data, err := os.ReadFile(filepath.Join(examples, rel))
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.WriteFile("/pods/"+strings.ReplaceAll(rel, "/", "_"), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := fl.WriteFile("/pods/e2e-readiness.yaml", []byte(e2eReadiness)); err != nil {
		t.Fatal(err)
	}

	b := Boot(t, dir, Options{})
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
	wait := func(t *testing.T, name, what string, timeout time.Duration, cond func(corev1.Pod) bool) corev1.Pod {
		t.Helper()
		var p corev1.Pod
		for deadline := time.Now().Add(timeout); ; time.Sleep(2 * time.Second) {
			var ok bool
			if p, ok = get(t, name); ok && cond(p) {
				return p
			}
			if b.Exited() || time.Now().After(deadline) {
				t.Fatalf("%s: %s not within %s: %s\nthe agent's warnings:\n%s", name, what, timeout, describeAll(p), warnings(b.ConsoleText()))
			}
		}
	}
	running := func(p corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	}
	kubectlMatch := func(t *testing.T, re *regexp.Regexp, args ...string) {
		t.Helper()
		out, err := b.Kubectl(args...)
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(out) {
			t.Errorf("kubectl %s does not match %s:\n%s", strings.Join(args, " "), re, out)
		}
	}

	t.Run("lifecycle-demo postStart", func(t *testing.T) {
		wait(t, "lifecycle-demo", "Running", PodsTimeout, running)
		out, err := b.Kubectl("exec", "lifecycle-demo", "--", "cat", "/usr/share/message")
		if err != nil {
			t.Fatal(err)
		}
		if out != "Hello from the postStart handler\n" {
			t.Errorf("kubectl exec lifecycle-demo -- cat /usr/share/message = %q, want \"Hello from the postStart handler\\n\"", out)
		}
	})

	t.Run("readiness probe", func(t *testing.T) {
		wait(t, "e2e-readiness", "Running", PodsTimeout, running)
		kubectlMatch(t, regexp.MustCompile(`(?m)^e2e-readiness\s+0/1\s+Running\s+0\s`), "get", "pod", "e2e-readiness")
		p, _ := get(t, "e2e-readiness")
		for _, c := range p.Status.Conditions {
			if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && (c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotReady") {
				t.Errorf("%s with the readiness probe failing: %s %s, want False ContainersNotReady", c.Type, c.Status, c.Reason)
			}
		}
		// Not ready because the probe ran and cat failed, as kubectl
		// describe shows: not because the probe could not run.
		unhealthy := regexp.MustCompile(`(?m)^\s+Warning\s+Unhealthy\s+.*Readiness probe failed: cat: can't open '/tmp/ready': No such file or directory$`)
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
			out, err := b.Kubectl("describe", "pod", "e2e-readiness")
			if err == nil && unhealthy.MatchString(out) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kubectl describe pod e2e-readiness has no event matching %s within a minute:\n%s", unhealthy, out)
			}
		}
		if _, err := b.Kubectl("exec", "e2e-readiness", "--", "touch", "/tmp/ready"); err != nil {
			t.Fatal(err)
		}
		wait(t, "e2e-readiness", "Ready", time.Minute, ready)
		kubectlMatch(t, regexp.MustCompile(`(?m)^e2e-readiness\s+1/1\s+Running\s+0\s`), "get", "pod", "e2e-readiness")
	})

	t.Run("exec-liveness restarted", func(t *testing.T) {
		wait(t, "liveness-exec", "restarted and running", PodsTimeout+2*time.Minute, func(p corev1.Pod) bool {
			return running(p) && p.Status.ContainerStatuses[0].RestartCount >= 1
		})
		kubectlMatch(t, regexp.MustCompile(`(?m)^liveness-exec\s+1/1\s+Running\s+1 \(\S+ ago\)\s+\S+$`), "get", "pod", "liveness-exec")
		out, err := b.Kubectl("describe", "pod", "liveness-exec")
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^\s+Warning\s+Unhealthy\s+.*Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory$`),
			regexp.MustCompile(`(?m)^\s+Normal\s+Killing\s+.*Container liveness failed liveness probe, will be restarted$`),
		} {
			if !re.MatchString(out) {
				t.Errorf("kubectl describe pod liveness-exec does not match %s:\n%s", re, out)
			}
		}
	})

	// exec-liveness's shell ignores SIGTERM: without this the power-off
	// waits out its 30 s grace.
	if _, err := b.Kubectl("delete", "pod", "liveness-exec", "--grace-period=1", "--wait=false"); err != nil {
		t.Error(err)
	}
	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}
