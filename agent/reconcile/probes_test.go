package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// fakeProbes is a prober whose results the test sets, by container ID.
type fakeProbes struct {
	mu                   sync.Mutex
	live, ready, started map[string]bool
	updated              map[types.UID]*corev1.PodStatus
	removed              []types.UID
}

func newFakeProbes() *fakeProbes {
	return &fakeProbes{live: map[string]bool{}, ready: map[string]bool{}, started: map[string]bool{}, updated: map[types.UID]*corev1.PodStatus{}}
}

func (p *fakeProbes) get(m map[string]bool, id string) (bool, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok, known := m[id]
	return ok, known
}

func (p *fakeProbes) Readiness(id string) (bool, bool) { return p.get(p.ready, id) }
func (p *fakeProbes) Startup(id string) (bool, bool)   { return p.get(p.started, id) }

func (p *fakeProbes) LivenessFailed(id string) bool {
	ok, known := p.get(p.live, id)
	return known && !ok
}

func (p *fakeProbes) StartupFailed(id string) bool {
	ok, known := p.get(p.started, id)
	return known && !ok
}

func (p *fakeProbes) set(m map[string]bool, id string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m[id] = ok
}

func (p *fakeProbes) UpdatePod(pod *corev1.Pod, status *corev1.PodStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updated[pod.UID] = status
}

func (p *fakeProbes) RemovePod(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed = append(p.removed, uid)
}

// fakeHooks runs hooks in synthetic time: each takes took, and fails with
// fail[container] when set.
type fakeHooks struct {
	mu    sync.Mutex
	took  time.Duration
	fail  map[string]string
	calls []string // "postStart app" at its start, "+<since start>"
	start time.Time
}

func (h *fakeHooks) RunHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, hh *corev1.LifecycleHandler) (string, error) {
	kind := "preStop"
	if hh == c.Lifecycle.PostStart {
		kind = "postStart"
	}
	h.mu.Lock()
	h.calls = append(h.calls, fmt.Sprintf("%s %s +%s", kind, c.Name, time.Since(h.start)))
	took, msg := h.took, h.fail[c.Name]
	h.mu.Unlock()
	t := time.NewTimer(took)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return "cut short", ctx.Err()
	}
	if msg != "" {
		return msg, errors.New("hook failed")
	}
	return "", nil
}

func (h *fakeHooks) taken() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func newProbeEnv(t *testing.T, rt *fake.Runtime, probes *fakeProbes, hooks *fakeHooks) *env {
	t.Helper()
	e := &env{t: t, rt: rt, pub: &publisher{}, rec: &recorder{}}
	cfg := Config{Runtime: rt, Pods: e.pub, Events: e.rec, LogRoot: "/state/pods", NodeName: "board", HostIP: "192.168.1.10"}
	if probes != nil {
		cfg.Probes = probes
	}
	if hooks != nil {
		hooks.start = time.Now()
		cfg.Hooks = hooks
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

var execProbe = corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}

// withProbe sets the first container's probes or hooks, on a pod
// defaulted as the manifest package does (a 30 s grace).
func withProbe(pod *corev1.Pod, set func(c *corev1.Container)) *corev1.Pod {
	set(&pod.Spec.Containers[0])
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	pod.Spec.TerminationGracePeriodSeconds = &grace
	return pod
}

// events returns the recorded events whose text contains any of keys.
func eventsWith(all []string, keys ...string) []string {
	var out []string
	for _, e := range all {
		for _, k := range keys {
			if strings.Contains(e, k) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// TestLivenessFailureRestarts: kubelet's computePodActions for a failed
// liveness probe: Killing with "will be restarted", the container started
// again (restart 1) at once, and a second failure soon after waits in
// CrashLoopBackOff like any crash.
func TestLivenessFailureRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		probes := newFakeProbes()
		e := newProbeEnv(t, rt, probes, nil)
		pod := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.LivenessProbe = &corev1.Probe{ProbeHandler: execProbe}
		})
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		first, _ := rt.Running("u1", "app")
		e.rec.take()

		probes.set(probes.live, first, false)
		e.m.Wake("u1")
		synctest.Wait()
		second, ok := rt.Running("u1", "app")
		if !ok || second == first {
			t.Fatalf("after a liveness failure the container runs as %q (ok=%v), want a new instance", second, ok)
		}
		if got := containerState(e.status("u1"), "app"); got != "running restarts=1" {
			t.Errorf("app = %s, want running restarts=1", got)
		}
		want := []string{"u1 Normal Killing spec.containers{app}: Container app failed liveness probe, will be restarted"}
		if diff := cmp.Diff(want, eventsWith(e.rec.take(), "Killing")); diff != "" {
			t.Errorf("Killing events (-want +got):\n%s", diff)
		}
		if calls := rt.Calls(); !slices.Contains(calls, "StopContainer "+first+" grace=30s") {
			t.Errorf("no stop with the pod's 30 s grace in %q", calls)
		}
		// Every status published with the restart shows the killed
		// instance terminated, never still running.
		e.pub.mu.Lock()
		for _, p := range e.pub.history {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.RestartCount == 1 && cs.LastTerminationState.Terminated == nil {
					t.Errorf("published restarts=1 with lastState %+v, want terminated", cs.LastTerminationState)
				}
			}
		}
		e.pub.mu.Unlock()

		// The first restart recorded no backoff (the instance was running
		// when it was killed, kubelet's doBackOff); the second records
		// one from the first instance's end, and a third failure within
		// it waits in CrashLoopBackOff like any crash.
		advance(time.Second)
		probes.set(probes.live, second, false)
		e.m.Wake("u1")
		synctest.Wait()
		third, ok := rt.Running("u1", "app")
		if !ok || third == second {
			t.Fatalf("after a second liveness failure the container runs as %q (ok=%v), want a new instance", third, ok)
		}
		advance(time.Second)
		probes.set(probes.live, third, false)
		e.m.Wake("u1")
		synctest.Wait()
		if _, ok := rt.Running("u1", "app"); ok {
			t.Fatal("a third liveness failure 1 s after the second restarted the container at once; want the crash-loop backoff")
		}
		if got := containerState(e.status("u1"), "app"); !strings.HasPrefix(got, "waiting CrashLoopBackOff: back-off 10s") {
			t.Errorf("app = %s, want waiting CrashLoopBackOff", got)
		}
		advance(10 * time.Second)
		if got := containerState(e.status("u1"), "app"); got != "running restarts=3" {
			t.Errorf("after the backoff, app = %s, want running restarts=3", got)
		}
	})
}

// TestProbeKillGraceAndReasons: a failed startup probe kills as a failed
// liveness one does, with its own message; a probe's
// terminationGracePeriodSeconds is the kill's grace; under restartPolicy
// Never a failed container is killed and not restarted, and a pod with
// nothing left to run is killed as kubelet's KillPod does ("Stopping
// container").
func TestProbeKillGraceAndReasons(t *testing.T) {
	five := int64(5)
	tests := []struct {
		name        string
		policy      corev1.RestartPolicy
		containers  []string
		probe       func(c *corev1.Container)
		fail        func(p *fakeProbes, id string)
		wantKilling string
		wantGrace   string
		wantRunning bool
	}{
		{
			name: "startup probe failed", policy: corev1.RestartPolicyAlways, containers: []string{"app"},
			probe: func(c *corev1.Container) { c.StartupProbe = &corev1.Probe{ProbeHandler: execProbe} },
			fail:  func(p *fakeProbes, id string) { p.set(p.started, id, false) },
			// The container never started: the grace is the pod's.
			wantKilling: "Container app failed startup probe, will be restarted", wantGrace: "30s", wantRunning: true,
		},
		{
			name: "liveness probe with its own grace", policy: corev1.RestartPolicyOnFailure, containers: []string{"app"},
			probe: func(c *corev1.Container) {
				c.LivenessProbe = &corev1.Probe{ProbeHandler: execProbe, TerminationGracePeriodSeconds: &five}
			},
			fail:        func(p *fakeProbes, id string) { p.set(p.live, id, false) },
			wantKilling: "Container app failed liveness probe, will be restarted", wantGrace: "5s", wantRunning: true,
		},
		{
			name: "Never: killed, not restarted, beside a container that keeps running", policy: corev1.RestartPolicyNever, containers: []string{"app", "other"},
			probe:       func(c *corev1.Container) { c.LivenessProbe = &corev1.Probe{ProbeHandler: execProbe} },
			fail:        func(p *fakeProbes, id string) { p.set(p.live, id, false) },
			wantKilling: "Container app failed liveness probe", wantGrace: "30s",
		},
		{
			name: "Never: the last container goes as the pod's end", policy: corev1.RestartPolicyNever, containers: []string{"app"},
			probe:       func(c *corev1.Container) { c.LivenessProbe = &corev1.Probe{ProbeHandler: execProbe} },
			fail:        func(p *fakeProbes, id string) { p.set(p.live, id, false) },
			wantKilling: "Stopping container app", wantGrace: "30s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				probes := newFakeProbes()
				e := newProbeEnv(t, rt, probes, nil)
				pod := withProbe(newTestPod("u1", tt.policy, tt.containers...), tt.probe)
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()
				first, _ := rt.Running("u1", "app")
				e.rec.take()
				tt.fail(probes, first)
				e.m.Wake("u1")
				synctest.Wait()
				want := []string{"u1 Normal Killing spec.containers{app}: " + tt.wantKilling}
				if diff := cmp.Diff(want, eventsWith(e.rec.take(), "Killing")); diff != "" {
					t.Errorf("Killing events (-want +got):\n%s", diff)
				}
				if calls := rt.Calls(); !slices.Contains(calls, "StopContainer "+first+" grace="+tt.wantGrace) {
					t.Errorf("no stop of %s with grace %s in %q", first, tt.wantGrace, calls)
				}
				if _, running := rt.Running("u1", "app"); running != tt.wantRunning {
					t.Errorf("app running = %v, want %v", running, tt.wantRunning)
				}
				if len(tt.containers) > 1 {
					if _, ok := rt.Running("u1", "other"); !ok {
						t.Error("the other container was stopped too")
					}
				}
			})
		})
	}
}

// TestReadinessNeverRestarts: a failing readiness probe makes the
// container and the pod not ready, and kills nothing.
func TestReadinessNeverRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		probes := newFakeProbes()
		e := newProbeEnv(t, rt, probes, nil)
		pod := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: execProbe}
		})
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		id, _ := rt.Running("u1", "app")
		if st := e.status("u1"); st.ContainerStatuses[0].Ready {
			t.Error("ready before the readiness probe's first result")
		}
		// The prober is handed the published status.
		probes.mu.Lock()
		handed := probes.updated["u1"]
		probes.mu.Unlock()
		if handed == nil || len(handed.ContainerStatuses) != 1 || handed.ContainerStatuses[0].ContainerID != "containerd://"+id {
			t.Fatalf("the prober got %+v, want the status with container %s", handed, id)
		}
		probes.set(probes.ready, id, true)
		e.m.Wake("u1")
		synctest.Wait()
		if st := e.status("u1"); !st.ContainerStatuses[0].Ready || !podReady(st) {
			t.Errorf("after a readiness success: ready=%v, pod Ready=%v", st.ContainerStatuses[0].Ready, podReady(st))
		}
		probes.set(probes.ready, id, false)
		e.m.Wake("u1")
		advance(time.Minute)
		if st := e.status("u1"); st.ContainerStatuses[0].Ready || podReady(st) {
			t.Errorf("after a readiness failure: ready=%v, pod Ready=%v", st.ContainerStatuses[0].Ready, podReady(st))
		}
		if now, _ := rt.Running("u1", "app"); now != id {
			t.Errorf("a readiness failure restarted the container (%s -> %s)", id, now)
		}
		if k := eventsWith(e.rec.take(), "Killing"); len(k) > 0 {
			t.Errorf("Killing after a readiness failure: %q", k)
		}
	})
}

func podReady(st corev1.PodStatus) bool {
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestSidecarStartupProbeGatesInit: the app containers start only once a
// sidecar's startup probe succeeded (kubelet's
// computeInitContainerActions); a sidecar failing its liveness probe is
// restarted without stopping the app.
func TestSidecarStartupProbeGatesInit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		probes := newFakeProbes()
		e := newProbeEnv(t, rt, probes, nil)
		always := corev1.ContainerRestartPolicyAlways
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "busybox:1.36", RestartPolicy: &always,
			StartupProbe: &corev1.Probe{ProbeHandler: execProbe}, LivenessProbe: &corev1.Probe{ProbeHandler: execProbe}}}
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		proxy, ok := rt.Running("u1", "proxy")
		if !ok {
			t.Fatal("the sidecar did not start")
		}
		advance(time.Minute)
		if _, ok := rt.Running("u1", "app"); ok {
			t.Fatal("app started before the sidecar's startup probe succeeded")
		}
		probes.set(probes.started, proxy, true)
		e.m.Wake("u1")
		synctest.Wait()
		app, ok := rt.Running("u1", "app")
		if !ok {
			t.Fatal("app did not start after the sidecar's startup probe succeeded")
		}
		e.rec.take()
		probes.set(probes.live, proxy, false)
		e.m.Wake("u1")
		synctest.Wait()
		if now, ok := rt.Running("u1", "proxy"); !ok || now == proxy {
			t.Errorf("sidecar after its liveness failure: %q running=%v, want a new instance", now, ok)
		}
		if now, _ := rt.Running("u1", "app"); now != app {
			t.Errorf("app was restarted with its sidecar (%s -> %s)", app, now)
		}
		want := []string{"u1 Normal Killing spec.initContainers{proxy}: Init container proxy failed liveness probe"}
		if diff := cmp.Diff(want, eventsWith(e.rec.take(), "Killing")); diff != "" {
			t.Errorf("Killing events (-want +got):\n%s", diff)
		}
	})
}

// TestPostStartHook: the container counts as running only once its
// postStart hook is done; a failed hook kills it (Killing
// "FailedPostStartHook", FailedPostStartHook without the message) and it
// waits with PostStartHookError and the hook's message.
func TestPostStartHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		hooks := &fakeHooks{took: 5 * time.Second, fail: map[string]string{"bad": "Exec lifecycle hook ([false]) for Container \"bad\" in Pod \"web_default(u2)\" failed - error: command 'false' exited with 1, message: \"\""}}
		e := newProbeEnv(t, rt, nil, hooks)
		handler := &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"false"}}}
		good := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PostStart: handler}
		})
		good.Name = "good"
		bad := withProbe(newTestPod("u2", corev1.RestartPolicyAlways, "bad"), func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PostStart: handler}
		})
		e.m.SetDesired([]*corev1.Pod{good, bad})
		e.run()
		defer e.stop()
		// The hook is under way: the container runs, the pod says
		// ContainerCreating.
		if got := containerState(e.status("u1"), "app"); got != "waiting ContainerCreating restarts=0" {
			t.Errorf("during postStart, app = %s", got)
		}
		advance(5 * time.Second)
		if got := containerState(e.status("u1"), "app"); got != "running restarts=0" {
			t.Errorf("after postStart, app = %s", got)
		}
		want := "waiting PostStartHookError: " + hooks.fail["bad"] + " restarts=0"
		if got := containerState(e.status("u2"), "bad"); got != want {
			t.Errorf("after a failed postStart, bad = %s\nwant %s", got, want)
		}
		list, _ := rt.ListContainers(t.Context())
		for _, c := range list {
			if c.Name == "bad" && c.Attempt == 0 && c.State != "exited" {
				t.Errorf("the instance whose postStart failed is %s, want exited", c.State)
			}
		}
		wantEvents := []string{
			"u2 Warning FailedPostStartHook spec.containers{bad}: PostStartHook failed",
			"u2 Normal Killing spec.containers{bad}: FailedPostStartHook",
		}
		if diff := cmp.Diff(wantEvents, eventsWith(e.rec.take(), "u2 Warning FailedPostStartHook", "u2 Normal Killing")); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestPreStopHook: a deletion runs preStop before the stop signal, and the
// time it took comes off the grace (kubelet's killContainer); a failed
// hook is a FailedPreStopHook event and the stop goes on.
func TestPreStopHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("bad", true)
		hooks := &fakeHooks{took: 10 * time.Second, fail: map[string]string{"bad": "it broke"}}
		e := newProbeEnv(t, rt, nil, hooks)
		handler := &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 10}}
		good := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PreStop: handler}
		})
		good.Name = "good"
		bad := withProbe(newTestPod("u2", corev1.RestartPolicyAlways, "bad"), func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PreStop: handler}
		})
		e.m.SetDesired([]*corev1.Pod{good, bad})
		e.run()
		defer e.stop()
		app, _ := rt.Running("u1", "app")
		badID, _ := rt.Running("u2", "bad")
		e.rec.take()
		e.m.SetDesired(nil)
		advance(time.Minute)
		for _, want := range []string{"StopContainer " + app + " grace=20s", "StopContainer " + badID + " grace=20s"} {
			if calls := rt.Calls(); !slices.Contains(calls, want) {
				t.Errorf("no %q in %q", want, calls)
			}
		}
		if got := hooks.taken(); len(got) != 2 {
			t.Errorf("hooks run: %q, want one preStop each", got)
		}
		want := []string{"u2 Warning FailedPreStopHook spec.containers{bad}: PreStopHook failed"}
		if diff := cmp.Diff(want, eventsWith(e.rec.take(), "FailedPreStopHook")); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		probesGone := e.pub.get("u1") == nil && e.pub.get("u2") == nil
		if !probesGone {
			t.Error("the pods are still published after their deletion")
		}
	})
}

// TestPreStopOutlivingGrace: a hook that runs past the grace is abandoned
// and the container still gets kubelet's minimum 2 s after the signal.
func TestPreStopOutlivingGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		hooks := &fakeHooks{took: time.Hour}
		e := newProbeEnv(t, rt, nil, hooks)
		grace := int64(10)
		pod := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3600}}}
		})
		pod.Spec.TerminationGracePeriodSeconds = &grace
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		id, _ := rt.Running("u1", "app")
		e.m.SetDesired(nil)
		advance(9 * time.Second)
		if calls := rt.Calls(); slices.Contains(calls, "StopContainer "+id+" grace=2s") {
			t.Errorf("stopped before the grace ran out: %q", calls)
		}
		advance(time.Second)
		if calls := rt.Calls(); !slices.Contains(calls, "StopContainer "+id+" grace=2s") {
			t.Errorf("no stop with the 2 s minimum in %q", calls)
		}
	})
}

// TestProberForgetsDeletedPods: a deleted pod's probes are removed.
func TestProberForgetsDeletedPods(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		probes := newFakeProbes()
		e := newProbeEnv(t, rt, probes, nil)
		pod := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: execProbe}
		})
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		e.m.SetDesired(nil)
		advance(time.Minute)
		probes.mu.Lock()
		defer probes.mu.Unlock()
		if diff := cmp.Diff([]types.UID{"u1"}, probes.removed); diff != "" {
			t.Errorf("removed (-want +got):\n%s", diff)
		}
	})
}

// TestPreStopAtPowerOff: StopAll (the board powering off) runs the
// preStop hooks before the stop signal, as a deletion does.
func TestPreStopAtPowerOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		hooks := &fakeHooks{took: 4 * time.Second}
		e := newProbeEnv(t, rt, nil, hooks)
		pod := withProbe(newTestPod("u1", corev1.RestartPolicyAlways, "app"), func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 4}}}
		})
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		id, _ := rt.Running("u1", "app")
		start := time.Now()
		if err := e.m.StopAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 4*time.Second {
			t.Errorf("StopAll took %v, want the hook's 4 s", took)
		}
		if diff := cmp.Diff([]string{"preStop app +0s"}, hooks.taken()); diff != "" {
			t.Errorf("hooks (-want +got):\n%s", diff)
		}
		if calls := rt.Calls(); !slices.Contains(calls, "StopContainer "+id+" grace=26s") {
			t.Errorf("no stop with the grace left after the hook in %q", calls)
		}
	})
}
