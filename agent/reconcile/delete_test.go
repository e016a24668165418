package reconcile

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// stops returns the StopContainer calls made since the first n calls.
func stops(rt *fake.Runtime, n int) []string {
	var out []string
	for _, c := range rt.Calls()[n:] {
		if strings.HasPrefix(c, "StopContainer ") {
			out = append(out, c)
		}
	}
	return out
}

// untilRemoved lets time pass a second at a time until the pod is no
// longer published, at most limit, and returns how long that took.
func untilRemoved(e *env, uid types.UID, limit time.Duration) time.Duration {
	start := time.Now()
	for e.pub.get(uid) != nil && time.Since(start) < limit {
		advance(time.Second)
	}
	return time.Since(start)
}

func int64p(v int64) *int64 { return &v }

// deletionEvents returns the events received so far on a watch, each as
// "TYPE uid" and a terminating pod's deletion fields (describeEvent without
// the containers), with repeats in a row dropped: once its containers
// have exited, a pod may be published with their final states before it
// is removed (kubelet's status manager does the same), or not, as the
// runtime's exit events and the worker's relist fall; either is right. It
// fails the test unless the first event shows the containers running: the
// pod is shown terminating before they are stopped.
func deletionEvents(t *testing.T, ch <-chan watch.Event, since time.Time) []string {
	t.Helper()
	var out []string
	for i, ev := range drainEvents(ch) {
		pod := ev.Object.(*corev1.Pod).DeepCopy()
		if i == 0 {
			for _, c := range pod.Status.ContainerStatuses {
				if c.State.Running == nil {
					t.Errorf("first event %s: container %s not running", describeEvent(ev, since), c.Name)
				}
			}
		}
		pod.Status.ContainerStatuses = nil
		d := describeEvent(watch.Event{Type: ev.Type, Object: pod}, since)
		if len(out) == 0 || out[len(out)-1] != d {
			out = append(out, d)
		}
	}
	return out
}

// A pod dropped from the desired set is deleted as the API server and
// kubelet delete it: published with deletionTimestamp (kubectl shows it
// Terminating) and deletionGracePeriodSeconds, its containers stopped with
// that grace (at least kubelet's 2 s), then removed, so a watch sees
// MODIFIED then DELETED.
func TestDeletionGrace(t *testing.T) {
	for _, tc := range []struct {
		name       string
		specGrace  *int64
		deletes    []int64 // SetDeletionGrace calls before the pod is dropped
		honourTerm bool    // the container exits on SIGTERM
		wantWatch  []string
		wantStops  []string
		wantGone   time.Duration
	}{{
		name:      "terminationGracePeriodSeconds",
		specGrace: int64p(5),
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+5s grace=5", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=5s"},
		wantGone:  5 * time.Second,
	}, {
		name:      "the API's default of 30 s",
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+30s grace=30", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=30s"},
		wantGone:  30 * time.Second,
	}, {
		name:      "a DELETE's gracePeriodSeconds",
		specGrace: int64p(30),
		deletes:   []int64{10},
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+10s grace=10", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=10s"},
		wantGone:  10 * time.Second,
	}, {
		name:      "a grace longer than the pod's",
		specGrace: int64p(5),
		deletes:   []int64{60},
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+1m0s grace=60", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=1m0s"},
		wantGone:  time.Minute,
	}, {
		name:      "two DELETEs: the shorter grace",
		deletes:   []int64{10, 20},
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+10s grace=10", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=10s"},
		wantGone:  10 * time.Second,
	}, {
		// kubectl delete --now: kubelet stops the container with its
		// minimum of 2 s.
		name:      "--now",
		deletes:   []int64{1},
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+1s grace=1", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=2s"},
		wantGone:  2 * time.Second,
	}, {
		// kubectl delete --force --grace-period=0: kubelet's pod worker
		// makes it 1, killContainer 2 s.
		name:      "--force --grace-period=0",
		specGrace: int64p(30),
		deletes:   []int64{0},
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+0s grace=0", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=2s"},
		wantGone:  2 * time.Second,
	}, {
		name:      "a negative grace is 1",
		deletes:   []int64{-3},
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+1s grace=1", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=2s"},
		wantGone:  2 * time.Second,
	}, {
		name:       "a container that exits on SIGTERM",
		specGrace:  int64p(30),
		honourTerm: true,
		wantWatch:  []string{"MODIFIED u1 deletionTimestamp=+30s grace=30", "DELETED u1"},
		wantStops:  []string{"StopContainer c0001 grace=30s"},
		wantGone:   0,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				rt.IgnoreSIGTERM("app", !tc.honourTerm)
				e := newEnv(t, rt, "")
				e.watchPods()
				pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
				pod.Spec.TerminationGracePeriodSeconds = tc.specGrace
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()
				pods := e.watch()
				calls := len(rt.Calls())

				start := time.Now()
				for _, g := range tc.deletes {
					e.m.SetDeletionGrace("u1", g)
				}
				synctest.Wait()
				if got := drain(pods, start); len(got) != 0 {
					t.Errorf("SetDeletionGrace alone changed the pod: %q", got)
				}
				e.m.SetDesired(nil)
				synctest.Wait()
				if p := e.pub.get("u1"); tc.wantGone > 0 && (p == nil || p.DeletionTimestamp == nil) {
					t.Errorf("pod right after it was dropped = %v, want it published terminating", p)
				}
				if gone := untilRemoved(e, "u1", 2*time.Minute); gone != tc.wantGone {
					t.Errorf("pod removed after %v, want %v", gone, tc.wantGone)
				}
				if diff := cmp.Diff(tc.wantWatch, deletionEvents(t, pods, start)); diff != "" {
					t.Errorf("watch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantStops, stops(rt, calls)); diff != "" {
					t.Errorf("stops (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// A DELETE with a shorter grace while the pod terminates shortens its
// deletion at once, as the API server and kubelet's pod worker do: the
// published pod shows the new grace and a deletionTimestamp moved back
// (never into the past: a grace already run out becomes 1 s unless it is
// 0), and the stop in progress is cut short and made again with the new
// grace. A longer grace changes nothing.
func TestDeletionGraceShortened(t *testing.T) {
	for _, tc := range []struct {
		name      string
		before    time.Duration // into the second at which the pod is dropped
		after     time.Duration // after the drop, the second DELETE
		grace     int64
		wantWatch []string
		wantStops []string
		wantGone  time.Duration
	}{{
		name:  "shorter",
		after: 2 * time.Second,
		grace: 10,
		wantWatch: []string{
			"MODIFIED u1 deletionTimestamp=+30s grace=30",
			"MODIFIED u1 deletionTimestamp=+10s grace=10",
			"DELETED u1",
		},
		wantStops: []string{"StopContainer c0001 grace=30s", "StopContainer c0001 grace=10s"},
		wantGone:  12 * time.Second,
	}, {
		name:  "shorter than the time already waited",
		after: 10 * time.Second,
		grace: 5,
		wantWatch: []string{
			"MODIFIED u1 deletionTimestamp=+30s grace=30",
			"MODIFIED u1 deletionTimestamp=+10s grace=1",
			"DELETED u1",
		},
		wantStops: []string{"StopContainer c0001 grace=30s", "StopContainer c0001 grace=2s"},
		wantGone:  12 * time.Second,
	}, {
		name:  "--force --grace-period=0",
		after: 10 * time.Second,
		grace: 0,
		wantWatch: []string{
			"MODIFIED u1 deletionTimestamp=+30s grace=30",
			"MODIFIED u1 deletionTimestamp=+10s grace=0",
			"DELETED u1",
		},
		wantStops: []string{"StopContainer c0001 grace=30s", "StopContainer c0001 grace=2s"},
		wantGone:  12 * time.Second,
	}, {
		// The API server computes the new deletionTimestamp from the
		// exact old one, not from the second it shows: here 10.9 s, still
		// ahead at 10.5 s, so the grace is not yet run out.
		name:   "shorter, to the nanosecond",
		before: 900 * time.Millisecond,
		after:  9600 * time.Millisecond,
		grace:  10,
		wantWatch: []string{
			"MODIFIED u1 deletionTimestamp=+29.1s grace=30",
			"MODIFIED u1 deletionTimestamp=+9.1s grace=10",
			"DELETED u1",
		},
		wantStops: []string{"StopContainer c0001 grace=30s", "StopContainer c0001 grace=10s"},
		wantGone:  19600 * time.Millisecond,
	}, {
		name:      "longer",
		after:     2 * time.Second,
		grace:     60,
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+30s grace=30", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=30s"},
		wantGone:  30 * time.Second,
	}, {
		name:      "the same",
		after:     2 * time.Second,
		grace:     30,
		wantWatch: []string{"MODIFIED u1 deletionTimestamp=+30s grace=30", "DELETED u1"},
		wantStops: []string{"StopContainer c0001 grace=30s"},
		wantGone:  30 * time.Second,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				rt.IgnoreSIGTERM("app", true)
				e := newEnv(t, rt, "")
				e.watchPods()
				e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
				e.run()
				defer e.stop()
				pods := e.watch()
				calls := len(rt.Calls())

				advance(tc.before)
				start := time.Now()
				e.m.SetDesired(nil)
				advance(tc.after)
				e.m.SetDeletionGrace("u1", tc.grace)
				synctest.Wait()
				if gone := tc.after + untilRemoved(e, "u1", 2*time.Minute); gone != tc.wantGone {
					t.Errorf("pod removed %v after it was dropped, want %v", gone, tc.wantGone)
				}
				if diff := cmp.Diff(tc.wantWatch, deletionEvents(t, pods, start)); diff != "" {
					t.Errorf("watch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantStops, stops(rt, calls)); diff != "" {
					t.Errorf("stops (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// SetDeletionGrace for a UID without a pod does nothing (and does not
// panic); the grace a pod never used is forgotten with its worker, so the
// pod desired again later under the same UID is deleted with its own.
func TestDeletionGraceUnknownOrForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("app", true)
		e := newEnv(t, rt, "")
		e.watchPods()
		e.run()
		defer e.stop()
		e.m.SetDeletionGrace("nobody", 0)

		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Spec.TerminationGracePeriodSeconds = int64p(5)
		e.m.SetDesired([]*corev1.Pod{pod})
		synctest.Wait()
		e.m.SetDeletionGrace("u1", 0)
		e.m.SetDesired(nil)
		synctest.Wait()
		if gone := untilRemoved(e, "u1", time.Minute); gone != 2*time.Second {
			t.Fatalf("first deletion took %v, want 2s", gone)
		}
		e.m.SetDesired([]*corev1.Pod{pod})
		synctest.Wait()
		pods := e.watch()
		start := time.Now()
		e.m.SetDesired(nil)
		synctest.Wait()
		if gone := untilRemoved(e, "u1", time.Minute); gone != 5*time.Second {
			t.Errorf("second deletion took %v, want the pod's 5s", gone)
		}
		want := []string{"MODIFIED u1 deletionTimestamp=+5s grace=5", "DELETED u1"}
		if diff := cmp.Diff(want, deletionEvents(t, pods, start)); diff != "" {
			t.Errorf("watch (-want +got):\n%s", diff)
		}
	})
}

// A DELETE that shortens the grace after the worker read the pod but
// before it began stopping the containers (here: while it publishes the
// pod terminating) is not lost: that stop is cut short at once too.
func TestDeletionGraceShortenedBeforeTheStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("app", true)
		e := newEnv(t, rt, "")
		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
		e.run()
		defer e.stop()
		calls := len(rt.Calls())
		shortened := false
		e.pub.mu.Lock()
		e.pub.onPublish = func(pod *corev1.Pod) {
			if pod.DeletionTimestamp != nil && !shortened {
				shortened = true
				e.m.SetDeletionGrace("u1", 3)
			}
		}
		e.pub.mu.Unlock()
		e.m.SetDesired(nil)
		synctest.Wait()
		if gone := untilRemoved(e, "u1", time.Minute); gone != 3*time.Second {
			t.Errorf("pod removed after %v, want the 3 s of the second DELETE", gone)
		}
		want := []string{"StopContainer c0001 grace=30s", "StopContainer c0001 grace=3s"}
		if diff := cmp.Diff(want, stops(rt, calls)); diff != "" {
			t.Errorf("stops (-want +got):\n%s", diff)
		}
	})
}
