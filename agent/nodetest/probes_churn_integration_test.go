package nodetest

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// Probe churn: probeChurnRounds batches of probeChurnBatch probed pods,
// 200 pod lifetimes in all.
const (
	probeChurnRounds = 5
	probeChurnBatch  = 40
	// probeChurnSlack is how far above the baseline the agent's goroutines
	// and open fds may settle: the API's idle keep-alive connections and
	// containerd's client streams come and go with the test's own
	// requests. A leak per probe worker or per pod would be 200 or more.
	probeChurnSlack = 8
)

// probeKind is the handler of the churn's kind-th pod: exec, httpGet and
// tcpSocket in turn, all against the pod's own busybox httpd on 8080 (or a
// file it made).
func probeKind(kind int) string {
	switch kind % 3 {
	case 0:
		return "exec: {command: [cat, /tmp/ready]}"
	case 1:
		return "httpGet: {path: /index.html, port: 8080}"
	default:
		return "tcpSocket: {port: 8080}"
	}
}

// probeChurnPod is one churn pod: a busybox httpd with a readiness probe
// of one kind and a tcpSocket liveness probe, every second. The shell
// stops on SIGTERM (as PID 1 it would ignore it) so that a deletion is
// quick. Forty pods starting at once on two cores make an exec take more
// than kubelet's default second and httpd start late: the timeouts and the
// liveness threshold are wide so that a restart means a probe that is
// wrong, not a host that is slow. (An exec probe costs the node a runc
// exec: one per pod a second is the most two cores carry beside the pods'
// starts.)
func probeChurnPod(name string, kind int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[1]s}
spec:
  containers:
  - name: web
    image: busybox:1.36
    args: [sh, -c, "trap 'exit 0' TERM; echo ok >/tmp/index.html; touch /tmp/ready; httpd -f -p 8080 -h /tmp & wait"]
    readinessProbe:
      %[2]s
      periodSeconds: 1
      timeoutSeconds: 10
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
      timeoutSeconds: 10
      failureThreshold: 60
`, name, probeKind(kind))
}

// TestIntegrationProbeChurn creates and deletes 200 pods through the
// flash, each with a readiness probe (exec, httpGet or tcpSocket in turn)
// and a tcpSocket liveness probe, every second, in batches; each pod must
// become Ready (its readiness probe ran and passed) and none may restart
// (its liveness probe passed). Afterwards the agent's goroutines and open
// fds (go_goroutines and process_open_fds on its /metrics) are back at
// their level before the churn, and no prober_probe_total series of a
// deleted pod is left (kubelet deletes a worker's series when it stops).
// The baseline is taken after one warm-up pod of each kind came and went,
// so that what the agent starts once (the containerd client's streams,
// the pod network, the HTTP transports) is already in it.
func TestIntegrationProbeChurn(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Unavailable(t, "needs nsenter (util-linux)")
	}
	requireNode(t)
	t.Parallel()
	n := startNodeWith(t, nodeOptions{netns: testenv.NewNetNS(t), podNetwork: true})
	agent := n.agentPID(t)

	// runBatch creates the named pods in one flash file, waits until each
	// is Ready, then removes the file and waits until every one is gone.
	// check runs while the batch's pods are Ready.
	runBatch := func(file string, names []string, check func()) {
		t.Helper()
		var docs []string
		for i, name := range names {
			docs = append(docs, probeChurnPod(name, i))
		}
		n.writeManifest(file, strings.Join(docs, "---\n"))
		want := map[string]bool{}
		for _, name := range names {
			want[name] = true
		}
		n.waitPods(t, 3*time.Minute, "every pod of "+file+" Ready", func(pods []corev1.Pod) bool {
			ready := 0
			for _, p := range pods {
				if !want[p.Name] {
					continue
				}
				if cs := containerStatus(&p, "web"); cs != nil && cs.RestartCount != 0 {
					t.Fatalf("pod %s restarted (its liveness probe failed?): %+v\nagent log:\n%s", p.Name, cs, tail(n.stderr.String(), 40))
				}
				if condition(&p, corev1.PodReady) == corev1.ConditionTrue {
					ready++
				}
			}
			return ready == len(names)
		})
		check()
		n.removeManifest(file)
		n.waitPods(t, 3*time.Minute, "every pod of "+file+" gone", func(pods []corev1.Pod) bool {
			for _, p := range pods {
				if want[p.Name] {
					return false
				}
			}
			return true
		})
	}

	warmup := []string{"warmup-exec", "warmup-http", "warmup-tcp"}
	runBatch("warmup.yaml", warmup, func() {
		// Every kind's worker counts into kubelet's metric while its pod
		// lives (so the series checked at the end are not absent anyway).
		for _, name := range warmup {
			for _, probe := range []string{"Readiness", "Liveness"} {
				if proberTotal(t, n, name, "web", probe, "successful") == 0 {
					t.Errorf("prober_probe_total of %s's %s probe: no success while it is Ready", name, probe)
				}
			}
		}
	})
	goroutines, fds := n.settledUsage(t, 0, 0)
	t.Logf("baseline after warm-up: %d goroutines, %d open fds", goroutines, fds)

	start := time.Now()
	for round := range probeChurnRounds {
		names := make([]string, probeChurnBatch)
		for i := range names {
			names[i] = fmt.Sprintf("probe-churn-%d-%d", round, i)
		}
		t0 := time.Now()
		runBatch(fmt.Sprintf("churn-%d.yaml", round), names, func() { t.Logf("round %d: %d pods Ready in %v", round, len(names), time.Since(t0).Round(time.Second)) })
	}
	t.Logf("%d probed pods created, Ready and deleted in %v", probeChurnRounds*probeChurnBatch, time.Since(start).Round(time.Second))

	afterG, afterFds := n.settledUsage(t, goroutines+probeChurnSlack, fds+probeChurnSlack)
	t.Logf("after the churn: %d goroutines, %d open fds", afterG, afterFds)
	if got := n.agentPID(t); got != agent {
		t.Fatalf("podagent restarted during the churn (pid %d, then %d): the counts say nothing\n%s", agent, got, tail(n.stderr.String(), 40))
	}
	if afterFds > fds+probeChurnSlack {
		t.Errorf("the agent has %d open fds after the churn, %d before (slack %d)\n%s", afterFds, fds, probeChurnSlack, procFDs(agent))
	}
	// A worker's series go when it stops (kubelet's worker.run), which is
	// when its pod goes: give the last ones a moment.
	var left []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		left = regexp.MustCompile(`(?m)^prober_probe_total\{.*pod="(probe-churn|warmup)-[^"]*".*$`).FindAllString(n.mustKc(t, "get", "--raw", "/metrics"), -1)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) != 0 {
		t.Errorf("%d prober_probe_total series of deleted pods are left 30 s after the last pod went:\n%s", len(left), strings.Join(left[:min(len(left), 6)], "\n"))
	}
	if afterG > goroutines+probeChurnSlack {
		t.Errorf("the agent has %d goroutines after the churn, %d before (slack %d): a probe worker, exec or connection left behind\n%s", afterG, goroutines, probeChurnSlack, n.goroutineDump(t, agent))
	}
}

// agentPID is the PID of the node's podagent.
func (n *node) agentPID(t testing.TB) int {
	t.Helper()
	pids := procsOf("podagent", "--state "+n.state+" ")
	if len(pids) != 1 {
		t.Fatalf("podagent processes of this node: %v, want one", pids)
	}
	return pids[0]
}

// waitPods lists the node's pods until cond holds.
func (n *node) waitPods(t testing.TB, timeout time.Duration, what string, cond func([]corev1.Pod) bool) {
	t.Helper()
	var last []corev1.Pod
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		pods, err := n.listPods()
		if err != nil {
			continue
		}
		last = pods
		if cond(pods) {
			return
		}
	}
	var states []string
	for _, p := range last {
		cs := containerStatus(&p, "web")
		states = append(states, fmt.Sprintf("%s %s ready=%s %+v", p.Name, p.Status.Phase, condition(&p, corev1.PodReady), cs))
	}
	t.Fatalf("%s: not within %v; the pods:\n%s\nagent log:\n%s", what, timeout, strings.Join(states, "\n"), tail(n.stderr.String(), 40))
}

// settledUsage reads the agent's go_goroutines and process_open_fds from
// its /metrics until both are at or below the limits (0: until two reads
// a second apart agree), for at most a minute, and returns the last read:
// goroutines and fds end a moment after the work that held them.
func (n *node) settledUsage(t testing.TB, maxG, maxFds int) (goroutines, fds int) {
	t.Helper()
	read := func() (int, int) {
		g, err := strconv.Atoi(scrape(t, n, "go_goroutines"))
		if err != nil {
			t.Fatalf("go_goroutines on /metrics: %v", err)
		}
		f, err := strconv.ParseFloat(scrape(t, n, "process_open_fds"), 64)
		if err != nil {
			t.Fatalf("process_open_fds on /metrics: %v", err)
		}
		return g, int(f)
	}
	goroutines, fds = read()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		g, f := read()
		if maxG == 0 && g == goroutines && f == fds {
			return g, f
		}
		goroutines, fds = g, f
		if maxG != 0 && g <= maxG && f <= maxFds {
			return g, f
		}
	}
	return goroutines, fds
}

// goroutineDump makes the agent dump its goroutines (SIGQUIT: it exits
// and devnode starts it again) and sums the dump up by each goroutine's
// innermost podboot frame, for the message of a leak.
func (n *node) goroutineDump(t testing.TB, pid int) string {
	t.Helper()
	before := len(n.stderr.String())
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		return fmt.Sprintf("SIGQUIT to podagent %d: %v", pid, err)
	}
	time.Sleep(3 * time.Second)
	dump := n.stderr.String()[before:]
	counts := map[string]int{}
	for _, g := range strings.Split(dump, "\n\ngoroutine ")[1:] {
		where := "?"
		for _, line := range strings.Split(g, "\n")[1:] {
			if strings.Contains(line, "podboot/podboot/") && !strings.HasPrefix(line, "\t") {
				where = line
				break
			}
		}
		counts[where]++
	}
	var out []string
	for where, c := range counts {
		out = append(out, fmt.Sprintf("%5d %s", c, where))
	}
	slices.Sort(out)
	slices.Reverse(out)
	return "the agent's goroutines by innermost podboot frame:\n" + strings.Join(out, "\n")
}

// procFDs lists what a process's open fds point at, for a failure message.
func procFDs(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		out = append(out, e.Name()+" -> "+target)
	}
	return strings.Join(out, "\n")
}
