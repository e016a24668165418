package prober

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/probe"
)

// fakeProber answers each probe from a script per container and probe
// type ("c/Liveness"); past a script's end it repeats the last answer.
// The probe type is the handler's exec command (see probeOf).
//
// Script words: S success, F failure (output "failed N", N the call's
// number), W warning (output "redirect N"), U unknown, E error ("boom N"),
// B blocks until the probe's ctx ends, P panics.
type fakeProber struct {
	mu      sync.Mutex
	scripts map[string][]string
	calls   map[string]int
	timeout map[string]time.Duration
	targets map[string]probe.Target
}

func newFakeProber(scripts map[string][]string) *fakeProber {
	return &fakeProber{scripts: scripts, calls: map[string]int{}, timeout: map[string]time.Duration{}, targets: map[string]probe.Target{}}
}

func (f *fakeProber) Probe(ctx context.Context, h *corev1.ProbeHandler, t probe.Target, timeout time.Duration) (probe.Result, string, error) {
	key := t.Container.Name + "/" + h.Exec.Command[0]
	f.mu.Lock()
	f.calls[key]++
	n := f.calls[key]
	f.timeout[key] = timeout
	f.targets[key] = t
	script := f.scripts[key]
	f.mu.Unlock()
	word := "S"
	if len(script) > 0 {
		word = script[min(n, len(script))-1]
	}
	switch word {
	case "S":
		return probe.Success, "", nil
	case "F":
		return probe.Failure, fmt.Sprintf("failed %d", n), nil
	case "W":
		return probe.Warning, fmt.Sprintf("redirect %d", n), nil
	case "U":
		return probe.Unknown, "", nil
	case "E":
		return probe.Unknown, "", fmt.Errorf("boom %d", n)
	case "B":
		<-ctx.Done()
		return probe.Failure, "", ctx.Err()
	case "P":
		panic("probe panicked")
	}
	panic("bad script word " + word)
}

func (f *fakeProber) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

type event struct {
	Object    string
	FieldPath string
	Type      string
	Reason    string
	Message   string
}

type fakeRecorder struct {
	mu     sync.Mutex
	events []event
}

func (r *fakeRecorder) EventfOnField(obj k8sruntime.Object, fieldPath, eventtype, reason, messageFmt string, args ...any) {
	pod := obj.(*corev1.Pod)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{pod.Namespace + "/" + pod.Name, fieldPath, eventtype, reason, fmt.Sprintf(messageFmt, args...)})
}

func (r *fakeRecorder) list() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// probeOf is a probe whose exec command names its type, for fakeProber.
func probeOf(typ Type, mods ...func(*corev1.Probe)) *corev1.Probe {
	p := &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{string(typ)}}},
		TimeoutSeconds:   1,
		PeriodSeconds:    10,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
	for _, mod := range mods {
		mod(p)
	}
	return p
}

func period(s int32) func(*corev1.Probe) { return func(p *corev1.Probe) { p.PeriodSeconds = s } }
func initialDelay(s int32) func(*corev1.Probe) {
	return func(p *corev1.Probe) { p.InitialDelaySeconds = s }
}
func success(n int32) func(*corev1.Probe) { return func(p *corev1.Probe) { p.SuccessThreshold = n } }
func failure(n int32) func(*corev1.Probe) { return func(p *corev1.Probe) { p.FailureThreshold = n } }

func newPod(name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name + "-uid")},
		Spec:       corev1.PodSpec{Containers: containers, RestartPolicy: corev1.RestartPolicyAlways},
	}
}

// cs is a container's status: running since startedAt (zero: waiting),
// or terminated with exit when exit is not nil.
type cs struct {
	name      string
	id        string // runtime ID; the status gets "containerd://" in front
	init      bool
	startedAt time.Time
	exit      *int32
	started   bool
}

func status(phase corev1.PodPhase, containers ...cs) *corev1.PodStatus {
	s := &corev1.PodStatus{Phase: phase, PodIP: "10.88.0.7"}
	for _, c := range containers {
		st := corev1.ContainerStatus{Name: c.name, Started: &c.started}
		if c.id != "" {
			st.ContainerID = "containerd://" + c.id
		}
		switch {
		case c.exit != nil:
			st.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: *c.exit}
		case !c.startedAt.IsZero():
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
		default:
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		if c.init {
			s.InitContainerStatuses = append(s.InitContainerStatuses, st)
		} else {
			s.ContainerStatuses = append(s.ContainerStatuses, st)
		}
	}
	return s
}

// harness runs a Manager in a synctest bubble with a fake Prober and
// recorder and counts the Changed calls by pod.
type harness struct {
	t      *testing.T
	start  time.Time
	m      *Manager
	prober *fakeProber
	events *fakeRecorder
	cancel context.CancelFunc

	mu      sync.Mutex
	changed map[types.UID]int
}

func newHarness(t *testing.T, cfg Config, scripts map[string][]string) *harness {
	h := &harness{t: t, start: time.Now(), prober: newFakeProber(scripts), events: &fakeRecorder{}, changed: map[types.UID]int{}}
	cfg.Prober = h.prober
	cfg.Events = h.events
	cfg.Changed = func(uid types.UID) {
		h.mu.Lock()
		h.changed[uid]++
		h.mu.Unlock()
	}
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0 }
	}
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	h.m = NewManager(ctx, cfg)
	t.Cleanup(func() {
		h.m.Stop()
		h.cancel()
	})
	return h
}

// at sleeps until d after the harness started, then waits for the
// workers to be idle.
func (h *harness) at(d time.Duration) {
	h.t.Helper()
	if wait := time.Until(h.start.Add(d)); wait > 0 {
		time.Sleep(wait)
	}
	synctest.Wait()
}

func (h *harness) changes(uid types.UID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed[uid]
}

// snapshot prints the results of the given runtime IDs, the probe calls
// of the given containers, the Changed calls of pod and the live workers.
func (h *harness) snapshot(pod *corev1.Pod, ids []string, containers []string) string {
	var parts []string
	for _, id := range ids {
		var rs []string
		for _, typ := range []Type{Startup, Liveness, Readiness} {
			if r, ok := h.m.result(typ, id); ok {
				rs = append(rs, fmt.Sprintf("%c=%s", typ[0], r))
			}
		}
		if len(rs) == 0 {
			rs = []string{"-"}
		}
		parts = append(parts, id+":"+strings.Join(rs, ","))
	}
	var calls []string
	for _, c := range containers {
		for _, typ := range []Type{Startup, Liveness, Readiness} {
			if n := h.prober.count(c + "/" + string(typ)); n > 0 {
				calls = append(calls, fmt.Sprintf("%s/%c=%d", c, typ[0], n))
			}
		}
	}
	sort.Strings(calls)
	return fmt.Sprintf("%s calls[%s] changed=%d workers=%d",
		strings.Join(parts, " "), strings.Join(calls, " "), h.changes(pod.UID), h.m.Workers())
}
