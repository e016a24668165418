package prober

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// step is one moment of a timeline: at `at` after the manager started,
// the pod is handed a new status (and marked for deletion), then, once the
// workers are idle, the harness's snapshot is compared with want.
type step struct {
	at       time.Duration
	status   func(t0 time.Time) *corev1.PodStatus // nil: no UpdatePod
	deleting bool
	want     string
}

func running(name, id string, startedAt time.Time, started bool) cs {
	return cs{name: name, id: id, startedAt: startedAt, started: started}
}

func exited(name, id string, code int32) cs {
	return cs{name: name, id: id, exit: &code}
}

func withProbes(name string, startup, liveness, readiness *corev1.Probe) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", StartupProbe: startup, LivenessProbe: liveness, ReadinessProbe: readiness}
}

// TestTimeline runs kubelet's worker state machine (worker.go) through
// timelines of one pod; each step names the worker.go behaviour it checks.
func TestTimeline(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name       string
		pod        *corev1.Pod
		scripts    map[string][]string
		rand       float64
		ids        []string
		containers []string
		steps      []step
	}{{
		// worker.go:373-391: a liveness Failure is set on the third failure
		// in a row, then the worker holds until a new container ID.
		name:       "liveness fails on the third failure and holds until a new container",
		pod:        newPod("p", withProbes("c", nil, probeOf(Liveness), nil)),
		scripts:    map[string][]string{"c/Liveness": {"F"}},
		ids:        []string{"c1", "c2"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:L=Success c2:- calls[c/L=1] changed=0 workers=1"},
			{at: 10500 * time.Millisecond, want: "c1:L=Success c2:- calls[c/L=2] changed=0 workers=1"},
			{at: 20500 * time.Millisecond, want: "c1:L=Failure c2:- calls[c/L=3] changed=1 workers=1"},
			{at: 30500 * time.Millisecond, want: "c1:L=Failure c2:- calls[c/L=3] changed=1 workers=1"},
			{at: 35 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c2", t0.Add(35*time.Second), true))
			}, want: "c1:L=Failure c2:- calls[c/L=3] changed=1 workers=1"},
			{at: 40500 * time.Millisecond, want: "c1:- c2:L=Success calls[c/L=4] changed=1 workers=1"},
			{at: 60500 * time.Millisecond, want: "c1:- c2:L=Failure calls[c/L=6] changed=2 workers=1"},
		},
	}, {
		// worker.go:373-379: successThreshold and failureThreshold both
		// count runs; readiness is never put on hold.
		name: "readiness needs successThreshold successes and failureThreshold failures, and never holds",
		pod:  newPod("p", withProbes("c", nil, nil, probeOf(Readiness, success(2)))),
		scripts: map[string][]string{
			"c/Readiness": {"S", "S", "F", "F", "F", "S", "S"},
		},
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:R=Failure calls[c/R=1] changed=1 workers=1"},
			{at: 10500 * time.Millisecond, want: "c1:R=Success calls[c/R=2] changed=2 workers=1"},
			{at: 30500 * time.Millisecond, want: "c1:R=Success calls[c/R=4] changed=2 workers=1"},
			{at: 40500 * time.Millisecond, want: "c1:R=Failure calls[c/R=5] changed=3 workers=1"},
			{at: 50500 * time.Millisecond, want: "c1:R=Failure calls[c/R=6] changed=3 workers=1"},
			{at: 60500 * time.Millisecond, want: "c1:R=Success calls[c/R=7] changed=4 workers=1"},
		},
	}, {
		// worker.go:330-333: no probe before initialDelaySeconds have
		// passed since state.running.startedAt (8 s before the manager).
		name:       "initialDelaySeconds counts from the container's start",
		pod:        newPod("p", withProbes("c", nil, probeOf(Liveness, initialDelay(25)), nil)),
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0.Add(-8*time.Second), true))
			}, want: "c1:L=Success calls[] changed=0 workers=1"},
			{at: 10500 * time.Millisecond, want: "c1:L=Success calls[] changed=0 workers=1"},
			{at: 20500 * time.Millisecond, want: "c1:L=Success calls[c/L=1] changed=0 workers=1"},
		},
	}, {
		// worker.go:335-346: liveness and readiness wait for `started`;
		// startup stops probing once it succeeded (on hold,
		// worker.go:381-391). prober_manager.go:360-370: a started,
		// not-ready container's readiness probe runs at once.
		name: "startup gates liveness and readiness and stops after its success",
		pod:  newPod("p", withProbes("c", probeOf(Startup), probeOf(Liveness), probeOf(Readiness))),
		scripts: map[string][]string{
			"c/Startup": {"F", "S"},
		},
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, false))
			}, want: "c1:S=UNKNOWN,L=Success,R=Failure calls[c/S=1] changed=2 workers=3"},
			{at: 10500 * time.Millisecond, want: "c1:S=Success,L=Success,R=Failure calls[c/S=2] changed=3 workers=3"},
			{at: 12 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:S=Success,L=Success,R=Success calls[c/R=1 c/S=2] changed=4 workers=3"},
			{at: 20500 * time.Millisecond, want: "c1:S=Success,L=Success,R=Success calls[c/L=1 c/R=1 c/S=2] changed=4 workers=3"},
			{at: 22500 * time.Millisecond, want: "c1:S=Success,L=Success,R=Success calls[c/L=1 c/R=2 c/S=2] changed=4 workers=3"},
			{at: 40500 * time.Millisecond, want: "c1:S=Success,L=Success,R=Success calls[c/L=3 c/R=3 c/S=2] changed=4 workers=3"},
		},
	}, {
		// worker.go:381-391 and 286-287: a startup Failure holds the
		// worker until the next container, which starts Unknown again.
		name:       "startup failure holds until a new container",
		pod:        newPod("p", withProbes("c", probeOf(Startup), nil, nil)),
		scripts:    map[string][]string{"c/Startup": {"F"}},
		ids:        []string{"c1", "c2"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, false))
			}, want: "c1:S=UNKNOWN c2:- calls[c/S=1] changed=1 workers=1"},
			{at: 20500 * time.Millisecond, want: "c1:S=Failure c2:- calls[c/S=3] changed=2 workers=1"},
			{at: 40500 * time.Millisecond, want: "c1:S=Failure c2:- calls[c/S=3] changed=2 workers=1"},
			{at: 45 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c2", t0.Add(45*time.Second), false))
			}},
			{at: 50500 * time.Millisecond, want: "c1:- c2:S=UNKNOWN calls[c/S=4] changed=3 workers=1"},
		},
	}, {
		// worker.go:316-328: a terminating pod's liveness probe is set to
		// Success and its worker ends (dropping the result, 171-184);
		// readiness goes on.
		name: "terminating pod: liveness stops, readiness goes on",
		pod:  newPod("p", withProbes("c", nil, probeOf(Liveness), probeOf(Readiness))),
		scripts: map[string][]string{
			"c/Liveness": {"F"},
		},
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:L=Success,R=Success calls[c/L=1 c/R=1] changed=2 workers=2"},
			{at: 15 * time.Second, deleting: true, want: "c1:L=Success,R=Success calls[c/L=2 c/R=2] changed=2 workers=2"},
			{at: 20500 * time.Millisecond, want: "c1:R=Success calls[c/L=2 c/R=3] changed=2 workers=1"},
			{at: 40500 * time.Millisecond, want: "c1:R=Success calls[c/L=2 c/R=5] changed=2 workers=1"},
		},
	}, {
		// worker.go:316-328 for a startup probe: Success (the pod worker
		// is told) and the worker ends.
		name:       "terminating pod before its container started: startup succeeds and stops",
		pod:        newPod("p", withProbes("c", probeOf(Startup), nil, probeOf(Readiness))),
		scripts:    map[string][]string{"c/Startup": {"F"}},
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, false))
			}, want: "c1:S=UNKNOWN,R=Failure calls[c/S=1] changed=2 workers=2"},
			{at: 15 * time.Second, deleting: true, want: "c1:S=UNKNOWN,R=Failure calls[c/S=2] changed=2 workers=2"},
			{at: 20500 * time.Millisecond, want: "c1:R=Failure calls[c/S=2] changed=3 workers=1"},
		},
	}, {
		// worker.go:228-233: a terminal pod's workers end.
		name:       "terminal pod: every worker ends",
		pod:        newPod("p", withProbes("c", nil, probeOf(Liveness), probeOf(Readiness))),
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:L=Success,R=Success calls[c/L=1 c/R=1] changed=2 workers=2"},
			{at: 15 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodSucceeded, exited("c", "c1", 0))
			}},
			{at: 20500 * time.Millisecond, want: "c1:- calls[c/L=2 c/R=2] changed=2 workers=0"},
		},
	}, {
		// worker.go:295-314: a container that is not running is a
		// Failure; under restartPolicy Never an exited one will not run
		// again, so its worker ends.
		name: "exited container under Never: Failure, then the worker ends",
		pod: func() *corev1.Pod {
			p := newPod("p", withProbes("c", nil, nil, probeOf(Readiness)), withProbes("d", nil, nil, nil))
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			return p
		}(),
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true), running("d", "d1", t0, true))
			}, want: "c1:R=Success calls[c/R=1] changed=2 workers=1"},
			{at: 15 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, exited("c", "c1", 0), running("d", "d1", t0, true))
			}},
			{at: 20500 * time.Millisecond, want: "c1:- calls[c/R=2] changed=3 workers=0"},
		},
	}, {
		// worker.go:295-314: under Always the worker goes on with
		// Failure, and a new container is probed (at once: it is started
		// and not ready, prober_manager.go:360-370).
		name:       "exited container under Always: Failure, the worker goes on",
		pod:        newPod("p", withProbes("c", nil, nil, probeOf(Readiness))),
		ids:        []string{"c1", "c2"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:R=Success c2:- calls[c/R=1] changed=2 workers=1"},
			{at: 15 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, exited("c", "c1", 1))
			}},
			{at: 20500 * time.Millisecond, want: "c1:R=Failure c2:- calls[c/R=2] changed=3 workers=1"},
			{at: 25 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c2", t0.Add(25*time.Second), true))
			}, want: "c1:- c2:R=Success calls[c/R=3] changed=5 workers=1"},
		},
	}, {
		// prober_manager.go:203 and worker.go:246-248, 311-313: a
		// restartable init container (sidecar) is probed, on its init
		// field path, and goes on when it exits even under Never; a plain
		// init container's probe has no worker.
		name: "sidecar: probed, goes on after it exits under Never; a plain init container is not probed",
		pod: func() *corev1.Pod {
			p := newPod("p", withProbes("c", nil, nil, nil))
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			sc := withProbes("sc", nil, nil, probeOf(Readiness))
			sc.RestartPolicy = &always
			p.Spec.InitContainers = []corev1.Container{withProbes("setup", nil, probeOf(Liveness), nil), sc}
			return p
		}(),
		ids:        []string{"sc1"},
		containers: []string{"sc", "setup"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				sc := running("sc", "sc1", t0, true)
				sc.init = true
				return status(corev1.PodRunning, sc, running("c", "c1", t0, true))
			}, want: "sc1:R=Success calls[sc/R=1] changed=2 workers=1"},
			{at: 15 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				sc := exited("sc", "sc1", 1)
				sc.init = true
				return status(corev1.PodRunning, sc, running("c", "c1", t0, true))
			}},
			{at: 20500 * time.Millisecond, want: "sc1:R=Failure calls[sc/R=2] changed=3 workers=1"},
		},
	}, {
		// worker.go:162-167: while the manager is younger than the
		// period, the first probe waits rand×period (0.25 × 10 s).
		name:       "jittered first probe while the manager is young",
		pod:        newPod("p", withProbes("c", nil, probeOf(Liveness), nil)),
		rand:       0.25,
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0, true))
			}, want: "c1:- calls[] changed=0 workers=1"},
			{at: 2400 * time.Millisecond, want: "c1:- calls[] changed=0 workers=1"},
			{at: 2600 * time.Millisecond, want: "c1:L=Success calls[c/L=1] changed=0 workers=1"},
			{at: 12400 * time.Millisecond, want: "c1:L=Success calls[c/L=1] changed=0 workers=1"},
			{at: 12600 * time.Millisecond, want: "c1:L=Success calls[c/L=2] changed=0 workers=1"},
		},
	}, {
		// worker.go:162-167: a pod added after the first period is probed
		// at once.
		name:       "no jitter for a pod added once the manager is older than the period",
		pod:        newPod("p", withProbes("c", nil, probeOf(Liveness), nil)),
		rand:       0.25,
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 30 * time.Second, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0.Add(30*time.Second), true))
			}, want: "c1:L=Success calls[c/L=1] changed=0 workers=1"},
			{at: 39900 * time.Millisecond, want: "c1:L=Success calls[c/L=1] changed=0 workers=1"},
			{at: 40100 * time.Millisecond, want: "c1:L=Success calls[c/L=2] changed=0 workers=1"},
		},
	}, {
		// worker.go:257-281 (ChangeContainerStatusOnKubeletRestart off):
		// a container that started over 10 s before the manager gets no
		// initial value, so a readiness result appears only with the
		// probes' own threshold.
		name:       "a container from before an agent restart gets no initial value",
		pod:        newPod("p", withProbes("c", nil, nil, probeOf(Readiness))),
		scripts:    map[string][]string{"c/Readiness": {"F"}},
		ids:        []string{"c1"},
		containers: []string{"c"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				return status(corev1.PodRunning, running("c", "c1", t0.Add(-30*time.Second), true))
			}, want: "c1:- calls[c/R=1] changed=0 workers=1"},
			{at: 20500 * time.Millisecond, want: "c1:R=Failure calls[c/R=3] changed=1 workers=1"},
		},
	}, {
		// worker.go:268-277: after an agent restart a started sidecar's
		// startup result is seeded with Success.
		name: "a started sidecar from before an agent restart has startup Success",
		pod: func() *corev1.Pod {
			p := newPod("p", withProbes("c", nil, nil, nil))
			sc := withProbes("sc", probeOf(Startup), nil, nil)
			sc.RestartPolicy = &always
			p.Spec.InitContainers = []corev1.Container{sc}
			return p
		}(),
		ids:        []string{"sc1"},
		containers: []string{"sc"},
		steps: []step{
			{at: 0, status: func(t0 time.Time) *corev1.PodStatus {
				sc := running("sc", "sc1", t0.Add(-30*time.Second), true)
				sc.init = true
				return status(corev1.PodRunning, sc)
			}, want: "sc1:S=Success calls[] changed=1 workers=1"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := Config{}
				if tt.rand != 0 {
					cfg.Rand = func() float64 { return tt.rand }
				}
				h := newHarness(t, cfg, tt.scripts)
				pod := tt.pod.DeepCopy()
				var st *corev1.PodStatus
				var got, want []string
				for _, s := range tt.steps {
					h.at(s.at)
					if s.deleting {
						pod = pod.DeepCopy()
						pod.DeletionTimestamp = &metav1.Time{Time: time.Now()}
					}
					if s.status != nil {
						st = s.status(h.start)
					}
					if s.status != nil || s.deleting {
						h.m.UpdatePod(pod, st)
						synctest.Wait()
					}
					if s.want == "" {
						continue
					}
					got = append(got, s.at.String()+" "+h.snapshot(pod, tt.ids, tt.containers))
					want = append(want, s.at.String()+" "+s.want)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("timeline (-want +got):\n%s", diff)
				}
			})
		})
	}
}
