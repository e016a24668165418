package prober

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/store"
)

// The store's recorder is the agent's EventRecorder.
var _ EventRecorder = (*store.Recorder)(nil)

// TestEvents checks kubelet's events (prober.go:104-134): reasons,
// messages, the container's field path, and that an errored probe is run
// maxProbeRetries times and its result thrown away (worker.go:349-353).
func TestEvents(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecarPod := func(p *corev1.Probe, typ Type) *corev1.Pod {
		pod := newPod("p", withProbes("c", nil, nil, nil))
		sc := corev1.Container{Name: "sc", RestartPolicy: &always}
		switch typ {
		case Liveness:
			sc.LivenessProbe = p
		}
		pod.Spec.InitContainers = []corev1.Container{sc}
		return pod
	}
	tests := []struct {
		name       string
		pod        *corev1.Pod
		container  string
		scripts    map[string][]string
		wantCalls  int
		wantEvents []event
		wantResult string
	}{{
		name:      "liveness failure",
		pod:       newPod("p", withProbes("c", nil, probeOf(Liveness, failure(1)), nil)),
		container: "c",
		scripts:   map[string][]string{"c/Liveness": {"F"}},
		wantCalls: 1,
		wantEvents: []event{
			{"default/p", "spec.containers{c}", "Warning", "Unhealthy", "Liveness probe failed: failed 1"},
		},
		wantResult: "c1:L=Failure",
	}, {
		name:      "readiness failure",
		pod:       newPod("p", withProbes("c", nil, nil, probeOf(Readiness))),
		container: "c",
		scripts:   map[string][]string{"c/Readiness": {"F"}},
		wantCalls: 1,
		wantEvents: []event{
			{"default/p", "spec.containers{c}", "Warning", "Unhealthy", "Readiness probe failed: failed 1"},
		},
		wantResult: "c1:R=Failure",
	}, {
		name:      "readiness warning is a success with a ProbeWarning",
		pod:       newPod("p", withProbes("c", nil, nil, probeOf(Readiness))),
		container: "c",
		scripts:   map[string][]string{"c/Readiness": {"W"}},
		wantCalls: 1,
		wantEvents: []event{
			{"default/p", "spec.containers{c}", "Warning", "ProbeWarning", "Readiness probe warning: redirect 1"},
		},
		wantResult: "c1:R=Success",
	}, {
		name:      "startup errored three times: one event, result thrown away",
		pod:       newPod("p", withProbes("c", probeOf(Startup, failure(1)), nil, nil)),
		container: "c",
		scripts:   map[string][]string{"c/Startup": {"E"}},
		wantCalls: 3,
		wantEvents: []event{
			{"default/p", "spec.containers{c}", "Warning", "Unhealthy", "Startup probe errored and resulted in unknown state: boom 3"},
		},
		wantResult: "c1:S=UNKNOWN",
	}, {
		name:       "an error then a success: retried, no event",
		pod:        newPod("p", withProbes("c", nil, probeOf(Liveness, failure(1)), nil)),
		container:  "c",
		scripts:    map[string][]string{"c/Liveness": {"E", "S"}},
		wantCalls:  2,
		wantResult: "c1:L=Success",
	}, {
		name:       "unknown without an error is a failure without an event",
		pod:        newPod("p", withProbes("c", nil, nil, probeOf(Readiness, success(1)))),
		container:  "c",
		scripts:    map[string][]string{"c/Readiness": {"U"}},
		wantCalls:  1,
		wantResult: "c1:R=Failure",
	}, {
		name:      "a sidecar's event is on its init container's field path",
		pod:       sidecarPod(probeOf(Liveness, failure(1)), Liveness),
		container: "sc",
		scripts:   map[string][]string{"sc/Liveness": {"F"}},
		wantCalls: 1,
		wantEvents: []event{
			{"default/p", "spec.initContainers{sc}", "Warning", "Unhealthy", "Liveness probe failed: failed 1"},
		},
		wantResult: "c1:L=Failure",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{}, tt.scripts)
				c := running(tt.container, "c1", h.start, true)
				c.init = tt.container == "sc"
				// A startup probe's container is not started yet.
				c.started = tt.pod.Spec.Containers[0].StartupProbe == nil
				h.m.UpdatePod(tt.pod, status(corev1.PodRunning, c))
				synctest.Wait()

				calls := 0
				for _, typ := range []Type{Startup, Liveness, Readiness} {
					calls += h.prober.count(tt.container + "/" + string(typ))
				}
				if calls != tt.wantCalls {
					t.Errorf("probe calls = %d, want %d", calls, tt.wantCalls)
				}
				if diff := cmp.Diff(tt.wantEvents, h.events.list()); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				got, _, _ := strings.Cut(h.snapshot(tt.pod, []string{"c1"}, nil), " ")
				if got != tt.wantResult {
					t.Errorf("result = %q, want %q", got, tt.wantResult)
				}
			})
		})
	}
}

// TestMetrics checks prober_probe_total and prober_probe_duration_seconds
// as kubelet exposes them (prober_manager.go:41-69, worker.go:355-364):
// the duration only of successful (and unknown) probes, and the series
// deleted when the worker ends (worker.go:179-183).
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		h := newHarness(t, Config{Registerer: reg}, map[string][]string{
			"c/Liveness":  {"S", "S", "F"},
			"c/Readiness": {"F"},
		})
		pod := newPod("p", withProbes("c", nil, probeOf(Liveness), probeOf(Readiness)))
		h.m.UpdatePod(pod, status(corev1.PodRunning, running("c", "c1", h.start, true)))
		h.at(20500 * time.Millisecond)

		const want = `
# HELP prober_probe_total [BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.
# TYPE prober_probe_total counter
prober_probe_total{container="c",namespace="default",pod="p",pod_uid="p-uid",probe_type="Liveness",result="failed"} 1
prober_probe_total{container="c",namespace="default",pod="p",pod_uid="p-uid",probe_type="Liveness",result="successful"} 2
prober_probe_total{container="c",namespace="default",pod="p",pod_uid="p-uid",probe_type="Readiness",result="failed"} 3
# HELP prober_probe_duration_seconds [ALPHA] Duration in seconds for a probe response.
# TYPE prober_probe_duration_seconds histogram
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.005"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.01"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.025"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.05"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.1"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.25"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="0.5"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="1"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="2.5"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="5"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="10"} 2
prober_probe_duration_seconds_bucket{container="c",namespace="default",pod="p",probe_type="Liveness",le="+Inf"} 2
prober_probe_duration_seconds_sum{container="c",namespace="default",pod="p",probe_type="Liveness"} 0
prober_probe_duration_seconds_count{container="c",namespace="default",pod="p",probe_type="Liveness"} 2
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "prober_probe_total", "prober_probe_duration_seconds"); err != nil {
			t.Errorf("metrics after three rounds: %v", err)
		}

		// A second manager on the same registry shares the series.
		NewManager(context.Background(), Config{Registerer: reg, Prober: h.prober}).Stop()

		h.m.RemovePod(pod.UID)
		n, err := testutil.GatherAndCount(reg, "prober_probe_total", "prober_probe_duration_seconds")
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d series left after RemovePod, want 0", n)
		}
	})
}

// TestTarget checks what the Prober is given: the probe's handler, the
// runtime ID without "containerd://", the pod IP, the container, and
// timeoutSeconds; a probe whose timing fields are zero gets kubelet's
// defaults (period 10 s, timeout 1 s, failure threshold 3).
func TestTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, map[string][]string{"c/Liveness": {"F"}, "c/Readiness": {"S"}})
		live := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"Liveness"}}}}
		ready := probeOf(Readiness, func(p *corev1.Probe) { p.TimeoutSeconds = 7 })
		pod := newPod("p", withProbes("c", nil, live, ready))
		h.m.UpdatePod(pod, status(corev1.PodRunning, running("c", "c1", h.start, true)))
		synctest.Wait()

		type target struct {
			Pod, Container, ContainerID, PodIP string
			Timeout                            time.Duration
		}
		got := map[string]target{}
		h.prober.mu.Lock()
		for k, tg := range h.prober.targets {
			got[k] = target{tg.Pod.Name, tg.Container.Name, tg.ContainerID, tg.PodIP, h.prober.timeout[k]}
		}
		h.prober.mu.Unlock()
		want := map[string]target{
			"c/Liveness":  {"p", "c", "c1", "10.88.0.7", time.Second},
			"c/Readiness": {"p", "c", "c1", "10.88.0.7", 7 * time.Second},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("targets (-want +got):\n%s", diff)
		}

		h.at(19500 * time.Millisecond)
		if r, _ := h.m.Liveness("c1"); r != Success || h.prober.count("c/Liveness") != 2 {
			t.Errorf("at 19.5 s: liveness %v after %d probes, want Success after 2 (period 10 s, failure threshold 3)", r, h.prober.count("c/Liveness"))
		}
		h.at(20500 * time.Millisecond)
		if r, _ := h.m.Liveness("containerd://c1"); r != Failure {
			t.Errorf("at 20.5 s: liveness %v, want Failure", r)
		}
	})
}

// TestRemovePodAndStop checks that RemovePod and Stop return only once
// their workers have, a worker blocked in a probe included (its probe's
// context ends), with no goroutine, result, event or Changed left behind.
func TestRemovePodAndStop(t *testing.T) {
	for _, stop := range []string{"RemovePod", "Stop"} {
		t.Run(stop, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				before := runtime.NumGoroutine()
				h := newHarness(t, Config{}, map[string][]string{
					"c/Liveness":  {"S"},
					"c/Readiness": {"S", "B"},
					"d/Liveness":  {"B"},
				})
				pod := newPod("p", withProbes("c", nil, probeOf(Liveness), probeOf(Readiness)), withProbes("d", nil, probeOf(Liveness), nil))
				h.m.UpdatePod(pod, status(corev1.PodRunning, running("c", "c1", h.start, true), running("d", "d1", h.start, true)))
				other := newPod("q", withProbes("e", nil, probeOf(Liveness), nil))
				h.m.UpdatePod(other, status(corev1.PodRunning, running("e", "e1", h.start, true)))
				h.at(10500 * time.Millisecond) // c's readiness and d's liveness are blocked in probes
				if got := h.m.Workers(); got != 4 {
					t.Fatalf("Workers() = %d before, want 4", got)
				}
				if got := runtime.NumGoroutine() - before; got != 4 {
					t.Fatalf("%d goroutines more than before, want 4 (one per worker)", got)
				}
				changed := h.changes(pod.UID)

				want := 1 // q's worker
				returned := make(chan struct{})
				go func() {
					defer close(returned)
					switch stop {
					case "RemovePod":
						h.m.RemovePod(pod.UID)
					case "Stop":
						h.m.Stop()
					}
				}()
				if stop == "Stop" {
					want = 0
				}
				synctest.Wait()
				select {
				case <-returned:
				default:
					// A probe that ignores its context: fail rather
					// than hang (q's ticker keeps the bubble's clock
					// going).
					t.Fatalf("%s has not returned with the workers idle", stop)
				}
				if got := h.m.Workers(); got != want {
					t.Errorf("Workers() = %d after %s, want %d", got, stop, want)
				}
				if got := runtime.NumGoroutine() - before; got != want {
					t.Errorf("%d goroutines more than before after %s, want %d", got, stop, want)
				}
				for _, id := range []string{"c1", "d1"} {
					for _, typ := range []Type{Liveness, Readiness, Startup} {
						if r, ok := h.m.result(typ, id); ok {
							t.Errorf("%s result of %s = %v after %s, want none", typ, id, r, stop)
						}
					}
				}
				if len(h.events.list()) != 0 {
					t.Errorf("events after %s: %v, want none (a cancelled probe is not a failure)", stop, h.events.list())
				}
				h.at(60 * time.Second)
				if got := h.changes(pod.UID); got != changed {
					t.Errorf("Changed called %d times after %s", got-changed, stop)
				}
				// Nothing starts the removed pod's workers but a new UpdatePod.
				if got := h.prober.count("c/Liveness"); got != 2 {
					t.Errorf("c's liveness probed %d times, want 2 (none after %s)", got, stop)
				}
			})
		})
	}
}

// TestWorkers checks one worker per probe of the containers and the
// restartable init containers (prober_manager.go:185-242), started by the
// first UpdatePod only.
func TestWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		always := corev1.ContainerRestartPolicyAlways
		h := newHarness(t, Config{}, nil)
		pod := newPod("p",
			withProbes("a", probeOf(Startup), probeOf(Liveness), probeOf(Readiness)),
			withProbes("b", nil, nil, probeOf(Readiness)),
			withProbes("none", nil, nil, nil))
		sc := withProbes("sc", probeOf(Startup), nil, nil)
		sc.RestartPolicy = &always
		pod.Spec.InitContainers = []corev1.Container{withProbes("setup", nil, probeOf(Liveness), probeOf(Readiness)), sc}

		h.m.UpdatePod(pod, nil)
		if got := h.m.Workers(); got != 5 {
			t.Errorf("Workers() = %d, want 5 (a: 3, b: 1, sc: 1)", got)
		}
		h.m.UpdatePod(pod, status(corev1.PodRunning, running("a", "a1", h.start, false)))
		h.m.UpdatePod(pod, nil)
		if got := h.m.Workers(); got != 5 {
			t.Errorf("Workers() = %d after more UpdatePods, want 5", got)
		}
		h.m.RemovePod(pod.UID)
		if got := h.m.Workers(); got != 0 {
			t.Errorf("Workers() = %d after RemovePod, want 0", got)
		}
		// The same UID again (a fleet pod desired again) starts afresh.
		h.m.UpdatePod(pod, nil)
		if got := h.m.Workers(); got != 5 {
			t.Errorf("Workers() = %d after the pod came back, want 5", got)
		}
		h.m.Stop()
		h.m.UpdatePod(newPod("q", withProbes("e", nil, probeOf(Liveness), nil)), nil)
		if got := h.m.Workers(); got != 0 {
			t.Errorf("Workers() = %d after Stop and UpdatePod, want 0", got)
		}
	})
}

// TestChangedOutsideTheLock checks that Changed may call back into the
// Manager (the pod worker reads the results and calls UpdatePod in its
// sync): under the lock this would deadlock, which synctest reports.
func TestChangedOutsideTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m *Manager
		var pod *corev1.Pod
		var st *corev1.PodStatus
		var seen []string
		m = NewManager(context.Background(), Config{
			Prober: newFakeProber(map[string][]string{"c/Readiness": {"S"}}),
			Rand:   func() float64 { return 0 },
			Changed: func(uid types.UID) {
				// The only worker calls Changed while the test waits,
				// so the lock is free unless the caller holds it.
				if !m.mu.TryLock() {
					t.Fatal("Changed called under the manager's lock")
				}
				m.mu.Unlock()
				r, _ := m.Readiness("c1")
				seen = append(seen, r.String())
				m.UpdatePod(pod, st)
			},
		})
		defer m.Stop()
		pod = newPod("p", withProbes("c", nil, nil, probeOf(Readiness)))
		st = status(corev1.PodRunning, running("c", "c1", time.Now(), true))
		m.UpdatePod(pod, st)
		synctest.Wait()
		if diff := cmp.Diff([]string{"Failure", "Success"}, seen); diff != "" {
			t.Errorf("readiness seen by Changed (-want +got):\n%s", diff)
		}
	})
}

// TestPanickingProbe checks that a probe's panic is eaten and the worker
// goes on (worker.go:216-217).
func TestPanickingProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, map[string][]string{"c/Readiness": {"P", "S"}})
		pod := newPod("p", withProbes("c", nil, nil, probeOf(Readiness)))
		h.m.UpdatePod(pod, status(corev1.PodRunning, running("c", "c1", h.start, true)))
		h.at(10500 * time.Millisecond)
		if r, _ := h.m.Readiness("c1"); r != Success || h.m.Workers() != 1 {
			t.Errorf("after a panic and a success: readiness %v, %d workers; want Success, 1", r, h.m.Workers())
		}
	})
}

// TestStopLivenessAndStartup checks kubelet's StopLivenessAndStartup
// (prober_manager.go:244-258): the pod's liveness and startup workers end
// and drop their results; readiness goes on.
func TestStopLivenessAndStartup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, nil)
		pod := newPod("p", withProbes("c", probeOf(Startup), probeOf(Liveness), probeOf(Readiness)))
		h.m.UpdatePod(pod, status(corev1.PodRunning, running("c", "c1", h.start, false)))
		synctest.Wait()
		h.m.StopLivenessAndStartup(pod.UID)
		if got, want := h.snapshot(pod, []string{"c1"}, []string{"c"}), "c1:R=Failure calls[c/S=1] changed=3 workers=1"; got != want {
			t.Errorf("after StopLivenessAndStartup: %q, want %q", got, want)
		}
	})
}
