package nodetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestIntegrationPodLifecycle runs pods through a real node and checks what
// kubelet would report for each.
func TestIntegrationPodLifecycle(t *testing.T) {
	n := startNode(t)

	n.writeManifest("lifecycle.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: sleeper, labels: {app: sleeper, tier: back}}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: ["sleep", "3600"]}
  - {name: side, image: "busybox:1.36", command: ["sh", "-c", "echo side says hi; exec sleep 3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: once, labels: {app: once}}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "echo done; exit 0"]}
---
apiVersion: v1
kind: Pod
metadata: {name: fails, labels: {app: fails}}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "exit 3"]}
---
apiVersion: v1
kind: Pod
metadata: {name: crasher, labels: {app: crasher}}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "echo crashing; exit 2"]}
---
apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  initContainers:
  - {name: first, image: "busybox:1.36", command: ["sh", "-c", "echo first; sleep 1"]}
  - {name: second, image: "busybox:1.36", command: ["echo", "second"]}
  containers:
  - {name: app, image: "busybox:1.36", command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: env-demo}
spec:
  hostname: envhost
  containers:
  - name: main
    image: "busybox:1.36"
    workingDir: /tmp
    command: ["sh", "-c"]
    args: ["echo msg=$MESSAGE cwd=$(pwd) host=$(hostname) uid=$(id -u) gid=$(id -g) greeting=$(GREETING); grep -q '^127.0.0.1.localhost' /etc/hosts && echo hosts=ok; echo etc-hostname=$(cat /etc/hostname); touch /ro-test 2>&1 || echo readonly; exec sleep 3600"]
    env:
    - {name: GREETING, value: hello}
    - {name: MESSAGE, value: "$(GREETING) world"}
    securityContext: {runAsUser: 65534, runAsGroup: 65534, readOnlyRootFilesystem: true}
`)

	t.Run("running pod", func(t *testing.T) {
		p := n.waitPod("sleeper", time.Minute, "Running with 2 running containers", running)
		if condition(p, corev1.PodReady) != corev1.ConditionTrue || condition(p, corev1.ContainersReady) != corev1.ConditionTrue {
			t.Errorf("Ready conditions: %+v", p.Status.Conditions)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.ImageID == "" || !cs.Ready {
				t.Errorf("container status %s: id %q imageID %q ready %v", cs.Name, cs.ContainerID, cs.ImageID, cs.Ready)
			}
		}
		// One containerd shim for the whole pod.
		if shims := procsOf("containerd-shim-runc-v2", n.state); len(shims) == 0 {
			t.Errorf("no shim found")
		}
		if p.Status.QOSClass != corev1.PodQOSBestEffort {
			t.Errorf("qosClass = %q, want BestEffort", p.Status.QOSClass)
		}
	})

	t.Run("completed pod", func(t *testing.T) {
		p := n.waitPod("once", time.Minute, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || cs.State.Terminated.ExitCode != 0 {
			t.Fatalf("status: %+v", cs)
		}
		if out := n.mustKubectl("logs", "once"); strings.TrimSpace(out) != "done" {
			t.Errorf("logs = %q, want done", out)
		}
	})

	t.Run("failed pod", func(t *testing.T) {
		p := n.waitPod("fails", time.Minute, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Reason != "Error" || cs.State.Terminated.ExitCode != 3 {
			t.Fatalf("status: %+v", cs)
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		p := n.waitPod("crasher", 90*time.Second, "CrashLoopBackOff after a restart", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "main")
			return cs != nil && cs.RestartCount >= 1 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
		})
		cs := containerStatus(p, "main")
		if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 2 || cs.LastTerminationState.Terminated.Reason != "Error" {
			t.Errorf("lastState: %+v", cs.LastTerminationState)
		}
		if !strings.Contains(cs.State.Waiting.Message, "back-off") {
			t.Errorf("waiting message %q", cs.State.Waiting.Message)
		}
		out := n.mustKubectl("get", "pod", "crasher")
		if !strings.Contains(out, "CrashLoopBackOff") && !strings.Contains(out, "Error") {
			t.Errorf("kubectl get pod crasher:\n%s", out)
		}
		if out := n.mustKubectl("logs", "crasher", "--previous"); !strings.Contains(out, "crashing") {
			t.Errorf("logs --previous = %q", out)
		}
		ev := n.mustKubectl("get", "events", "--field-selector", "involvedObject.name=crasher")
		if !strings.Contains(ev, "BackOff") {
			t.Errorf("no BackOff event:\n%s", ev)
		}
	})

	t.Run("init containers", func(t *testing.T) {
		p := n.waitPod("inits", time.Minute, "Running after both init containers", running)
		for _, name := range []string{"first", "second"} {
			cs := containerStatus(p, name)
			if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
				t.Errorf("init container %s: %+v", name, cs)
			}
		}
		first, second := containerStatus(p, "first").State.Terminated, containerStatus(p, "second").State.Terminated
		app := containerStatus(p, "app").State.Running
		if second.StartedAt.Before(&first.FinishedAt) || app.StartedAt.Before(&second.FinishedAt) {
			t.Errorf("not in order: first finished %v, second started %v finished %v, app started %v", first.FinishedAt, second.StartedAt, second.FinishedAt, app.StartedAt)
		}
		if condition(p, corev1.PodInitialized) != corev1.ConditionTrue {
			t.Errorf("Initialized: %+v", p.Status.Conditions)
		}
		if out := n.mustKubectl("logs", "inits", "-c", "second"); strings.TrimSpace(out) != "second" {
			t.Errorf("logs -c second = %q", out)
		}
	})

	t.Run("command, env, workingDir, user, read-only root, hostname", func(t *testing.T) {
		n.waitPod("env-demo", time.Minute, "Running", running)
		var out string
		for i := 0; i < 50; i++ {
			out = n.mustKubectl("logs", "env-demo")
			if strings.Contains(out, "readonly") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, want := range []string{"msg=hello world", "cwd=/tmp", "host=envhost", "uid=65534", "gid=65534", "greeting=hello", "hosts=ok", "etc-hostname=envhost", "readonly"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
}

// TestIntegrationTermination checks the grace period: sh as PID 1 ignores
// SIGTERM, so the pod goes only when SIGKILL comes after the grace period;
// a process that handles SIGTERM goes at once.
func TestIntegrationTermination(t *testing.T) {
	n := startNode(t)
	n.writeManifest("stubborn.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 4
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}
`)
	n.writeManifest("polite.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: polite}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.2; done"]}
`)
	n.waitPod("stubborn", time.Minute, "Running", running)
	n.waitPod("polite", time.Minute, "Running", running)

	start := time.Now()
	n.removeManifest("stubborn.yaml")
	n.removeManifest("polite.yaml")
	p := n.waitPod("stubborn", 10*time.Second, "Terminating (deletionTimestamp set)", func(p *corev1.Pod) bool { return p.DeletionTimestamp != nil })
	if p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 4 {
		t.Errorf("deletionGracePeriodSeconds = %v, want 4", p.DeletionGracePeriodSeconds)
	}
	n.waitGone("polite", 15*time.Second)
	politeGone := time.Since(start)
	n.waitGone("stubborn", 30*time.Second)
	stubbornGone := time.Since(start)
	if politeGone > 10*time.Second {
		t.Errorf("a pod that exits on SIGTERM took %v to go", politeGone)
	}
	if stubbornGone < 4*time.Second {
		t.Errorf("a pod that ignores SIGTERM went after %v, before its 4s grace period", stubbornGone)
	}
}

// TestIntegrationAdoption kills the agent with SIGKILL: the supervisor
// restarts it and it adopts the running containers without restarting them.
func TestIntegrationAdoption(t *testing.T) {
	n := startNode(t)
	n.writeManifest("adopt.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: adopted}
spec:
  containers:
  - {name: ticker, image: "busybox:1.36", command: ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: restarted}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "sleep 1; exit 1"]}
`)
	before := n.waitPod("adopted", time.Minute, "Running", running)
	r := n.waitPod("restarted", time.Minute, "restarted once", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1
	})
	restartsBefore := containerStatus(r, "main").RestartCount

	agents := procsOf("podagent", "--state", n.state)
	if len(agents) != 1 {
		t.Fatalf("found %d podagent processes", len(agents))
	}
	if err := syscall.Kill(agents[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The API goes away and comes back when the supervisor restarts the agent.
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := procsOf("podagent", "--state", n.state)
		if len(now) == 1 && now[0] != agents[0] {
			if _, ok := n.getPod("default", "adopted"); ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not back after SIGKILL\n%s", tail(n.stderr.String(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	after := n.waitPod("adopted", 30*time.Second, "Running after adoption", running)
	b, a := containerStatus(before, "ticker"), containerStatus(after, "ticker")
	if a.ContainerID != b.ContainerID || a.RestartCount != b.RestartCount || !a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) {
		t.Errorf("container was not adopted: before %s restarts %d started %v, after %s restarts %d started %v",
			b.ContainerID, b.RestartCount, b.State.Running.StartedAt, a.ContainerID, a.RestartCount, a.State.Running.StartedAt)
	}
	if !after.CreationTimestamp.Equal(&before.CreationTimestamp) || after.UID != before.UID {
		t.Errorf("pod identity changed: uid %s→%s created %v→%v", before.UID, after.UID, before.CreationTimestamp, after.CreationTimestamp)
	}
	r2, _ := n.getPod("default", "restarted")
	if got := containerStatus(r2, "main").RestartCount; got < restartsBefore {
		t.Errorf("restart count went from %d to %d across the agent restart", restartsBefore, got)
	}
	// Logging continues through the re-attached streams.
	first := n.mustKubectl("logs", "adopted", "--tail", "1")
	time.Sleep(time.Second)
	second := n.mustKubectl("logs", "adopted", "--tail", "1")
	if first == second {
		t.Errorf("log stopped after adoption: %q", first)
	}
}

// TestIntegrationLogRotation writes more than a log file holds.
func TestIntegrationLogRotation(t *testing.T) {
	n := startNode(t)
	n.writeManifest("chatty.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "busybox:1.36", command: ["seq", "1", "300000"]}
`)
	p := n.waitPod("chatty", time.Minute, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	dir := filepath.Join(n.state, "pods", fmt.Sprintf("default_chatty_%s", p.UID), "main")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var names []string
	for _, e := range entries {
		fi, _ := e.Info()
		total += fi.Size()
		names = append(names, e.Name())
	}
	if len(names) < 2 {
		t.Errorf("no rotation: %v", names)
	}
	// seq 1 300000 prints 2 MB of text, about 12 MB in CRI lines; the
	// default budget is 2 files of 1 MiB.
	if total > 2*1024*1024+64*1024 {
		t.Errorf("logs use %d bytes in %v, more than the 2 MiB budget", total, names)
	}
	if out := n.mustKubectl("logs", "chatty", "--tail", "2"); out != "299999\n300000\n" {
		t.Errorf("logs --tail 2 = %q", out)
	}
}

// TestIntegrationBadManifests puts broken documents beside good ones.
func TestIntegrationBadManifests(t *testing.T) {
	n := startNode(t)
	n.writeManifest("mixed.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: typo}
spec:
  containers:
  - {name: main, image: "busybox:1.36", comand: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: Bad_Name}
spec:
  containers:
  - {name: main, image: "busybox:1.36"}
`)
	n.writeManifest("garbage.yaml", "this: is: not: yaml: [\n")
	n.waitPod("good", time.Minute, "Running", running)
	if _, ok := n.getPod("default", "typo"); ok {
		t.Errorf("pod with an unknown field was applied")
	}
	var ev string
	for i := 0; i < 50; i++ {
		ev = n.mustKubectl("get", "events", "-A")
		if strings.Contains(ev, "comand") && strings.Contains(ev, "garbage.yaml") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"FailedManifest", "mixed.yaml", "comand", "Bad_Name", "garbage.yaml"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
	// A missing image is a clear per-pod error; the node keeps running.
	n.writeManifest("missing.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers:
  - {name: main, image: "not-here:1.0", imagePullPolicy: Never}
`)
	p := n.waitPod("noimage", time.Minute, "ErrImageNeverPull", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ErrImageNeverPull"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	if _, ok := n.getPod("default", "good"); !ok {
		t.Errorf("good pod disappeared")
	}
}
