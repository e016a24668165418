package nodetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// probeSemanticsPods are the pods that show what the docs imply but do not
// ship an example for: a readiness probe that fails (and later passes and
// fails again) and a startup probe holding back a liveness probe that
// would otherwise kill the container at once.
const probeSemanticsPods = `
apiVersion: v1
kind: Pod
metadata: {name: readiness-flip}
spec:
  containers:
  - name: app
    image: registry.k8s.io/busybox:1.27.2
    args: [/bin/sh, -c, "sleep 3600"]
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: startup-gate}
spec:
  containers:
  - name: app
    image: registry.k8s.io/busybox:1.27.2
    args: [/bin/sh, -c, "sleep 25; touch /tmp/started; sleep 3600"]
    startupProbe:
      exec: {command: [cat, /tmp/started]}
      periodSeconds: 2
      failureThreshold: 30
    livenessProbe:
      exec: {command: [cat, /tmp/started]}
      periodSeconds: 1
      failureThreshold: 1
`

// startupDelay is how long startup-gate's container runs before its
// startup probe can pass (its `sleep 25`).
const startupDelay = 25 * time.Second

// TestIntegrationProbeExamples applies the Kubernetes docs' probe and
// lifecycle examples (../shared/conformance/k8s-website/pods/probe and
// pods/lifecycle-events.yaml, read in place) all at once on one devnode
// with the pod network on (httpGet, tcpSocket and grpc probes reach the
// pod's IP), and checks with kubectl's own output what the docs pages say
// each one does: exec-liveness and http-liveness restarted by their
// failing liveness probes with kubelet's events, goproxy Ready only once
// its tcpSocket readiness probe passed, etcd's gRPC and redis's tcpSocket
// liveness probes healthy, lifecycle-demo's postStart message and its
// preStop at deletion. Two pods of its own show a failing readiness probe
// (0/1, ContainersNotReady, never restarted) and a startup probe gating
// liveness. About 90 s: exec-liveness's restart (30 s healthy, three
// failures 5 s apart, then busybox sh ignores SIGTERM for its 30 s grace)
// is the long pole, and every other check is due before it.
func TestIntegrationProbeExamples(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	requireNode(t)
	t.Parallel()
	examples := testenv.ConformanceDir(t)
	n := startProbeNode(t)

	apply := []string{"apply"}
	for _, rel := range []string{
		"pods/probe/exec-liveness.yaml",
		"pods/probe/http-liveness.yaml",
		"pods/probe/tcp-liveness-readiness.yaml",
		"pods/probe/grpc-liveness.yaml",
		"pods/probe/pod-with-tcp-socket-healthcheck.yaml",
		"pods/lifecycle-events.yaml",
	} {
		apply = append(apply, "-f", filepath.Join(examples, rel))
	}
	n.mustKc(t, apply...)
	if r := n.kubectlIn(t, probeSemanticsPods, nil, "apply", "-f", "-"); r.code != 0 {
		t.Fatalf("kubectl apply -f - (the readiness and startup pods): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Every pod's status as it goes, for the checks that are about what
	// never happened (Ready too early, started too early, a restart).
	hist := watchPods(n, 300*time.Millisecond, "goproxy", "startup-gate", "readiness-flip", "etcd-with-grpc", "pod-with-tcp-socket-healthcheck")
	t.Cleanup(hist.stop)

	t.Run("goproxy not ready before its readiness probe", func(t *testing.T) {
		p := n.waitPodIn(t, "default", "goproxy", 2*time.Minute, "Running", running)
		// The readiness probe's initialDelaySeconds is 15: until then the
		// container runs but is not ready (kubelet's initial readiness is
		// Failure), and kubectl says 0/1.
		if since := time.Since(containerStatus(p, "goproxy").State.Running.StartedAt.Time); since < 12*time.Second {
			out := n.mustKc(t, "get", "pod", "goproxy")
			if !regexp.MustCompile(`(?m)^goproxy\s+0/1\s+Running\s+0\s`).MatchString(out) {
				t.Errorf("kubectl get pod goproxy %v after its container started (readiness initialDelaySeconds 15):\n%s", since.Round(time.Second), out)
			}
			checkNotReady(t, n, "goproxy", "goproxy")
		} else {
			t.Logf("goproxy first seen running %v after its start: the READY column's 0/1 is checked from its status history only", since.Round(time.Second))
		}
	})

	t.Run("readiness probe failing", func(t *testing.T) {
		n.waitPodIn(t, "default", "readiness-flip", 2*time.Minute, "Running", running)
		n.waitPodEvent(t, "readiness-flip", "Warning", "Unhealthy", "Readiness probe failed: cat: can't open '/tmp/ready': No such file or directory")
		if out := n.mustKc(t, "get", "pod", "readiness-flip"); !regexp.MustCompile(`(?m)^readiness-flip\s+0/1\s+Running\s+0\s`).MatchString(out) {
			t.Errorf("kubectl get pod readiness-flip with its readiness probe failing:\n%s", out)
		}
		checkNotReady(t, n, "readiness-flip", "app")

		// The probe passes: ready, 1/1, Ready and ContainersReady True.
		n.mustKc(t, "exec", "readiness-flip", "--", "touch", "/tmp/ready")
		n.waitPodIn(t, "default", "readiness-flip", 30*time.Second, "Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
		if out := n.mustKc(t, "get", "pod", "readiness-flip"); !regexp.MustCompile(`(?m)^readiness-flip\s+1/1\s+Running\s+0\s`).MatchString(out) {
			t.Errorf("kubectl get pod readiness-flip with its readiness probe passing:\n%s", out)
		}
		p := n.kubectlPod(t, "readiness-flip")
		for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
			if c := podCondition(p, ct); c == nil || c.Status != corev1.ConditionTrue {
				t.Errorf("%s with the probe passing: %+v", ct, c)
			}
		}

		// It fails again: not ready again, and still not restarted.
		n.mustKc(t, "exec", "readiness-flip", "--", "rm", "/tmp/ready")
		n.waitPodIn(t, "default", "readiness-flip", 30*time.Second, "not Ready again", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionFalse })
		checkNotReady(t, n, "readiness-flip", "app")
	})

	t.Run("lifecycle-demo postStart", func(t *testing.T) {
		n.waitPodIn(t, "default", "lifecycle-demo", 2*time.Minute, "Running", running)
		// The docs: "kubectl exec -it lifecycle-demo -- /bin/bash", then
		// "cat /usr/share/message" prints the postStart handler's line. The
		// hook runs before the container counts as running, so the file is
		// there as soon as kubectl can exec.
		out := n.mustKc(t, "exec", "lifecycle-demo", "--", "cat", "/usr/share/message")
		if out != "Hello from the postStart handler\n" {
			t.Errorf("kubectl exec lifecycle-demo -- cat /usr/share/message = %q, want \"Hello from the postStart handler\\n\"", out)
		}
	})

	t.Run("http-liveness restarted", func(t *testing.T) {
		// agnhost liveness answers /healthz 200 for 10 s, then 500: the
		// probe (initialDelaySeconds 3, periodSeconds 3) fails three times
		// and kubelet restarts the container.
		n.waitPodIn(t, "default", "liveness-http", 2*time.Minute, "restarted", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "liveness")
			return cs != nil && cs.RestartCount >= 1
		})
		n.waitPodEvent(t, "liveness-http", "Warning", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500")
		n.waitPodEvent(t, "liveness-http", "Normal", "Killing", "Container liveness failed liveness probe, will be restarted")
		desc := n.mustKc(t, "describe", "pod", "liveness-http")
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^\s+Liveness:\s+http-get http://:8080/healthz delay=3s timeout=1s period=3s #success=1 #failure=3$`),
			regexp.MustCompile(`(?m)^\s+Warning\s+Unhealthy\s+.*Liveness probe failed: HTTP probe failed with statuscode: 500$`),
			regexp.MustCompile(`(?m)^\s+Normal\s+Killing\s+.*Container liveness failed liveness probe, will be restarted$`),
		} {
			if !re.MatchString(desc) {
				t.Errorf("kubectl describe pod liveness-http does not match %s:\n%s", re, desc)
			}
		}
	})

	t.Run("startup probe gates liveness", func(t *testing.T) {
		p := n.waitPodIn(t, "default", "startup-gate", 2*time.Minute, "started", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "app")
			return cs != nil && cs.Started != nil && *cs.Started
		})
		if cs := containerStatus(p, "app"); cs.RestartCount != 0 {
			t.Errorf("startup-gate restarted %d times before its startup probe passed: its liveness probe ran before `started`\nlast state: %+v", cs.RestartCount, cs.LastTerminationState)
		}
		n.waitPodEvent(t, "startup-gate", "Warning", "Unhealthy", "Startup probe failed: cat: can't open '/tmp/started': No such file or directory")
		// Until the startup probe passed: started false, not ready (a
		// container without a readiness probe is ready once started).
		var early int
		for _, o := range hist.of("startup-gate") {
			cs := containerStatus(o.pod, "app")
			if cs == nil || cs.State.Running == nil || o.at.Sub(cs.State.Running.StartedAt.Time) >= startupDelay-time.Second {
				continue
			}
			early++
			if cs.Started == nil || *cs.Started || cs.Ready {
				t.Errorf("startup-gate %v after its start (before its startup probe can pass): started %v, ready %v; want false, false", o.at.Sub(cs.State.Running.StartedAt.Time).Round(time.Second), ptrString(cs.Started), cs.Ready)
				break
			}
		}
		if early == 0 {
			t.Errorf("startup-gate was never seen running before its startup probe could pass (%v)", startupDelay)
		}
		if out := n.mustKc(t, "get", "pod", "startup-gate"); !regexp.MustCompile(`(?m)^startup-gate\s+1/1\s+Running\s+0\s`).MatchString(out) {
			t.Errorf("kubectl get pod startup-gate once started:\n%s", out)
		}
	})

	t.Run("goproxy ready", func(t *testing.T) {
		p := n.waitPodIn(t, "default", "goproxy", 2*time.Minute, "Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
		started := containerStatus(p, "goproxy").State.Running.StartedAt.Time
		// Times have a second's resolution: 15 s after the start is at
		// least 14 s apart once both are truncated.
		for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
			if c := podCondition(p, ct); c.LastTransitionTime.Time.Sub(started) < 14*time.Second {
				t.Errorf("%s turned True %v after the container started, before the readiness probe's initialDelaySeconds (15)", ct, c.LastTransitionTime.Time.Sub(started))
			}
		}
		var early int
		for _, o := range hist.of("goproxy") {
			cs := containerStatus(o.pod, "goproxy")
			if cs == nil || cs.State.Running == nil || o.at.Sub(cs.State.Running.StartedAt.Time) >= 14*time.Second {
				continue
			}
			early++
			if cs.Ready || condition(o.pod, corev1.PodReady) != corev1.ConditionFalse {
				t.Errorf("goproxy ready %v after its start, before its readiness probe's initialDelaySeconds (15)", o.at.Sub(cs.State.Running.StartedAt.Time).Round(time.Second))
				break
			}
		}
		if early == 0 {
			t.Errorf("goproxy was never seen running in its first 14 s")
		}
		if out := n.mustKc(t, "get", "pod", "goproxy"); !regexp.MustCompile(`(?m)^goproxy\s+1/1\s+Running\s+0\s`).MatchString(out) {
			t.Errorf("kubectl get pod goproxy once its readiness probe passed:\n%s", out)
		}
	})

	t.Run("exec-liveness restarted", func(t *testing.T) {
		// The docs: 30 s healthy, then `cat /tmp/healthy` fails; after three
		// failures 5 s apart the container is killed (sh ignores SIGTERM,
		// so after its 30 s grace) and restarted: RESTARTS 1.
		p := n.waitPodIn(t, "default", "liveness-exec", 3*time.Minute, "restarted and running", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "liveness")
			return cs != nil && cs.RestartCount >= 1 && cs.State.Running != nil
		})
		out := n.mustKc(t, "get", "pod", "liveness-exec")
		if !regexp.MustCompile(`(?m)^liveness-exec\s+1/1\s+Running\s+1 \(\S+ ago\)\s+\S+$`).MatchString(out) {
			t.Errorf("kubectl get pod liveness-exec after the restart:\n%s", out)
		}
		unhealthy := n.waitPodEvent(t, "liveness-exec", "Warning", "Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory")
		killing := n.waitPodEvent(t, "liveness-exec", "Normal", "Killing", "Container liveness failed liveness probe, will be restarted")
		// Three failures, then the probe is on hold until the new container:
		// the docs' "(x3 over 10s)", even though the old container lived 30 s
		// more in its grace period.
		if unhealthy.Count != 3 || killing.Count != 1 {
			t.Errorf("Unhealthy x%d and Killing x%d after the first restart, want x3 and x1 (failureThreshold 3, no probe of a container being killed)", unhealthy.Count, killing.Count)
		}
		if unhealthy.InvolvedObject.FieldPath != "spec.containers{liveness}" {
			t.Errorf("Unhealthy's fieldPath %q, want spec.containers{liveness}", unhealthy.InvolvedObject.FieldPath)
		}
		// The probe cannot fail before the file goes (30 s), and needs
		// three failures 5 s apart: no kill before 40 s.
		first := containerStatus(p, "liveness").LastTerminationState.Terminated
		if first == nil {
			time.Sleep(2 * time.Second)
			t.Fatalf("liveness-exec restarted without a last termination state: %+v\nkubectl describe pod liveness-exec 2 s later:\n%s", containerStatus(p, "liveness"), n.mustKc(t, "describe", "pod", "liveness-exec"))
		}
		if first.ExitCode != 137 || first.Reason != "Error" {
			t.Errorf("liveness-exec's last termination: exit %d, reason %q; want 137, Error (sh ignores SIGTERM: killed after its grace)", first.ExitCode, first.Reason)
		}
		if d := eventTime(killing).Sub(first.StartedAt.Time); d < 39*time.Second {
			t.Errorf("liveness-exec killed %v after it started; the probe can fail only after 30 s and three failures take 10 s more", d)
		}
		desc := n.mustKc(t, "describe", "pod", "liveness-exec")
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^\s+Liveness:\s+exec \[cat /tmp/healthy\] delay=5s timeout=1s period=5s #success=1 #failure=3$`),
			regexp.MustCompile(`(?m)^\s+Warning\s+Unhealthy\s+.*\(x3 over .*\)\s+.*Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory$`),
			regexp.MustCompile(`(?m)^\s+Normal\s+Killing\s+.*Container liveness failed liveness probe, will be restarted$`),
			regexp.MustCompile(`(?m)^\s+Restart Count:\s+1$`),
		} {
			if !re.MatchString(desc) {
				t.Errorf("kubectl describe pod liveness-exec does not match %s:\n%s", re, desc)
			}
		}
	})

	t.Run("healthy liveness probes", func(t *testing.T) {
		// etcd's grpc probe (initialDelaySeconds 10, periodSeconds 10) and
		// redis's tcpSocket probe (30, 10) pass: no restart, no Unhealthy,
		// and kubelet's prober_probe_total counts their successes.
		for _, c := range []struct{ pod, container string }{{"etcd-with-grpc", "etcd"}, {"pod-with-tcp-socket-healthcheck", "redis"}} {
			p := n.waitPodIn(t, "default", c.pod, time.Minute, "Running", running)
			if cs := containerStatus(p, c.container); cs.RestartCount != 0 || !cs.Ready {
				t.Errorf("%s: restarts %d, ready %v; want 0, true", c.pod, cs.RestartCount, cs.Ready)
			}
			got := 0.0
			for deadline := time.Now().Add(30 * time.Second); got == 0 && time.Now().Before(deadline); time.Sleep(time.Second) {
				got = proberTotal(t, n, c.pod, c.container, "Liveness", "successful")
			}
			if got == 0 {
				t.Errorf("prober_probe_total of %s's liveness probe has no success", c.pod)
			}
			if failed := proberTotal(t, n, c.pod, c.container, "Liveness", "failed"); failed != 0 {
				t.Errorf("prober_probe_total of %s's liveness probe: %v failed", c.pod, failed)
			}
			for _, e := range n.podEvents(t, c.pod) {
				if e.Reason == "Unhealthy" || e.Reason == "Killing" {
					t.Errorf("%s: event %s %q", c.pod, e.Reason, e.Message)
				}
			}
			for _, o := range hist.of(c.pod) {
				if cs := containerStatus(o.pod, c.container); cs != nil && cs.RestartCount != 0 {
					t.Errorf("%s restarted at %s", c.pod, o.at.Format(time.RFC3339))
					break
				}
			}
		}
	})

	t.Run("readiness and startup never restart", func(t *testing.T) {
		for _, name := range []string{"readiness-flip", "startup-gate", "goproxy"} {
			for _, o := range hist.of(name) {
				if o.pod.Status.ContainerStatuses != nil && o.pod.Status.ContainerStatuses[0].RestartCount != 0 {
					t.Errorf("%s restarted at %s: %+v", name, o.at.Format(time.RFC3339), o.pod.Status.ContainerStatuses[0].LastTerminationState)
					break
				}
			}
			for _, e := range n.podEvents(t, name) {
				if e.Reason == "Killing" || strings.HasPrefix(e.Message, "Liveness probe failed") {
					t.Errorf("%s: event %s %q", name, e.Reason, e.Message)
				}
			}
		}
	})

	t.Run("lifecycle-demo preStop", func(t *testing.T) {
		// The preStop hook runs `nginx -s quit` and waits for nginx to go.
		// nginx is the container's PID 1: when it quits, the kernel kills
		// the hook with the rest of the container, so the hook "fails"
		// (exit 137) although it did its work, and kubelet records
		// FailedPreStopHook with its fixed message (the hook's output is
		// left out of events so that secrets do not leak); on a cluster
		// the same example does the same. A hook never run records nothing.
		if r := n.kc(t, "delete", "pod", "lifecycle-demo"); r.code != 0 {
			t.Fatalf("kubectl delete pod lifecycle-demo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		n.waitPodEvent(t, "lifecycle-demo", "Warning", "FailedPreStopHook", "PreStopHook failed")
		n.waitPodEvent(t, "lifecycle-demo", "Normal", "Killing", "Stopping container lifecycle-demo-container")
	})

	// The pods whose shell ignores SIGTERM would hold the power-off for
	// their 30 s grace.
	n.mustKc(t, "delete", "pods", "--all", "--grace-period=1", "--wait=false")
}

// startProbeNode is a devnode in a network namespace of the test's with
// the pod network on, so that probes reach pods at their IPs as on a
// board; the untagged images (nginx, redis: imagePullPolicy Always) are
// pulled through a mirror of the stand-ins reached from inside the
// namespace.
func startProbeNode(t *testing.T) *node {
	t.Helper()
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Unavailable(t, "needs nsenter (util-linux)")
	}
	ns := testenv.NewNetNS(t)
	var pulled []imagebuild.Spec
	for _, s := range testenv.StandIns(t) {
		if repo, _, _ := strings.Cut(s.Tags[0], ":"); repo == "nginx" || repo == "redis" {
			pulled = append(pulled, s)
		}
	}
	mirror := forwardInto(t, ns, testenv.Mirror(t, pulled))
	return startNodeWith(t, nodeOptions{netns: ns, podNetwork: true}, func(flash string) {
		device := fmt.Sprintf("registries:\n  mirrors:\n    \"*\":\n      endpoint: [\"http://%s\"]\n", mirror)
		if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(device), 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// forwardInto listens on 127.0.0.1 inside ns and forwards each connection
// to addr in the test's own namespace; it returns the listener's address.
func forwardInto(t *testing.T, ns *testenv.NetNS, addr string) string {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatalf("listen in the node's namespace: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{})
				go func() {
					io.Copy(up, c)
					up.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				io.Copy(c, up)
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// observation is a pod's status as the API served it at one moment.
type observation struct {
	at  time.Time
	pod *corev1.Pod
}

// podWatch polls pods through the API and keeps every status it saw.
type podWatch struct {
	mu    sync.Mutex
	seen  map[string][]observation
	done  chan struct{}
	ended sync.WaitGroup
	once  sync.Once
}

func watchPods(n *node, every time.Duration, names ...string) *podWatch {
	w := &podWatch{seen: map[string][]observation{}, done: make(chan struct{})}
	w.ended.Add(1)
	go func() {
		defer w.ended.Done()
		for {
			for _, name := range names {
				if p, ok := n.getPod("default", name); ok {
					w.mu.Lock()
					w.seen[name] = append(w.seen[name], observation{at: time.Now(), pod: p})
					w.mu.Unlock()
				}
			}
			select {
			case <-w.done:
				return
			case <-time.After(every):
			}
		}
	}()
	return w
}

func (w *podWatch) of(name string) []observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen[name])
}

func (w *podWatch) stop() {
	w.once.Do(func() { close(w.done) })
	w.ended.Wait()
}

// kubectlPod reads a default-namespace pod with kubectl get -o json.
func (n *node) kubectlPod(t testing.TB, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := json.Unmarshal([]byte(n.mustKc(t, "get", "pod", name, "-o", "json")), &p); err != nil {
		t.Fatalf("decode kubectl get pod %s -o json: %v", name, err)
	}
	return &p
}

func podCondition(p *corev1.Pod, ct corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == ct {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// checkNotReady checks, with kubectl, kubelet's status of a running pod
// whose only container is not ready: the container running, started and
// not ready, Ready and ContainersReady False with reason
// ContainersNotReady and kubelet's message.
func checkNotReady(t *testing.T, n *node, pod, container string) {
	t.Helper()
	p := n.kubectlPod(t, pod)
	cs := containerStatus(p, container)
	if cs == nil || cs.State.Running == nil || cs.Ready || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 {
		t.Errorf("%s's container %s: %+v; want running, started, not ready, no restart", pod, container, cs)
	}
	msg := fmt.Sprintf("containers with unready status: [%s]", container)
	for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		c := podCondition(p, ct)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotReady" || c.Message != msg {
			t.Errorf("%s's %s condition: %+v; want False, ContainersNotReady, %q", pod, ct, c, msg)
		}
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("%s's phase %s, want Running", pod, p.Status.Phase)
	}
}

// podEvents lists the events about a default-namespace pod, through kubectl.
func (n *node) podEvents(t testing.TB, pod string) []corev1.Event {
	t.Helper()
	var out []corev1.Event
	for _, e := range n.events(t) {
		if e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Namespace == "default" && e.InvolvedObject.Name == pod {
			out = append(out, e)
		}
	}
	return out
}

// waitPodEvent waits for the pod's event of that type and reason whose
// message, trailing newlines aside (an exec probe's output ends with one),
// is message, and returns it.
func (n *node) waitPodEvent(t testing.TB, pod, typ, reason, message string) corev1.Event {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		seen = seen[:0]
		for _, e := range n.podEvents(t, pod) {
			if e.Type == typ && e.Reason == reason && strings.TrimRight(e.Message, "\n") == message {
				return e
			}
			seen = append(seen, fmt.Sprintf("%s %s x%d: %q", e.Type, e.Reason, e.Count, e.Message))
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("no %s %s event %q for pod %s; its events:\n%s\nagent log:\n%s", typ, reason, message, pod, strings.Join(seen, "\n"), tail(n.stderr.String(), 40))
	return corev1.Event{}
}

// proberTotal is kubelet's prober_probe_total of one container's probe
// and result, read with kubectl get --raw /metrics (0 when absent).
func proberTotal(t testing.TB, n *node, pod, container, probeType, result string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^prober_probe_total\{([^}]*)\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(n.mustKc(t, "get", "--raw", "/metrics"), -1) {
		labels := m[1]
		if strings.Contains(labels, `pod="`+pod+`"`) && strings.Contains(labels, `container="`+container+`"`) &&
			strings.Contains(labels, `probe_type="`+probeType+`"`) && strings.Contains(labels, `result="`+result+`"`) &&
			strings.Contains(labels, `namespace="default"`) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("prober_probe_total{%s} %q: %v", labels, m[2], err)
			}
			return v
		}
	}
	return 0
}

func ptrString(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}
