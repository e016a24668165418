package reconcile

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// TestEvict: an evicted pod's containers are all killed at once with no
// grace, it is Failed with kubelet's reason, message and DisruptionTarget
// condition, the containers' last states stay visible, a Warning event
// says why, and it is never started again, while the pod beside it runs.
// A new UID for the same name (its manifest changed) runs again.
func TestEvict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("a", true) // a SIGKILL's exit code, as containerd reports it
		rt.IgnoreSIGTERM("b", true)
		e := newEnv(t, rt, "")
		victim := newTestPod("u1", corev1.RestartPolicyAlways, "a", "b")
		other := newTestPod("u2", corev1.RestartPolicyAlways, "a")
		other.Name = "other"
		e.m.SetDesired([]*corev1.Pod{victim, other})
		e.run()
		defer e.stop()
		if got := len(e.m.ActivePods()); got != 2 {
			t.Fatalf("ActivePods: %d pods, want 2", got)
		}
		e.rec.take()

		const msg = "The node was low on resource: memory. Threshold quantity: 64Mi, available: 50Mi. "
		start := time.Now()
		if err := e.m.Evict("u1", "Evicted", msg); err != nil {
			t.Fatalf("Evict: %v", err)
		}
		synctest.Wait()
		if d := time.Since(start); d != 0 {
			t.Errorf("eviction took %s of synthetic time, want no grace at all", d)
		}
		var stops []string
		for _, c := range rt.Calls() {
			if strings.HasPrefix(c, "StopContainer") {
				stops = append(stops, c[strings.LastIndex(c, " ")+1:])
			}
		}
		if want := []string{"grace=0s", "grace=0s"}; !slices.Equal(stops, want) {
			t.Errorf("stops %q, want %q", stops, want)
		}
		s := e.status("u1")
		if s.Phase != corev1.PodFailed || s.Reason != "Evicted" || s.Message != msg {
			t.Errorf("evicted pod: phase %s reason %q message %q", s.Phase, s.Reason, s.Message)
		}
		var disruption *corev1.PodCondition
		for i := range s.Conditions {
			if s.Conditions[i].Type == corev1.DisruptionTarget {
				disruption = &s.Conditions[i]
			}
		}
		if disruption == nil || disruption.Status != corev1.ConditionTrue || disruption.Reason != "TerminationByKubelet" || disruption.Message != msg {
			t.Errorf("DisruptionTarget condition %+v, want True TerminationByKubelet with the message", disruption)
		}
		for _, c := range []string{"a", "b"} {
			if got := containerState(s, c); got != "terminated Error 137 restarts=0" {
				t.Errorf("container %s: %s, want terminated 137", c, got)
			}
		}
		if s := e.status("u2"); s.Phase != corev1.PodRunning {
			t.Errorf("other pod: phase %s, want Running", s.Phase)
		}
		var warnings []string
		for _, ev := range e.rec.take() {
			if strings.Contains(ev, " Warning ") {
				warnings = append(warnings, ev)
			}
		}
		if want := []string{"u1 Warning Evicted : " + msg}; !slices.Equal(warnings, want) {
			t.Errorf("warnings %q, want %q", warnings, want)
		}
		if got := e.m.ActivePods(); len(got) != 1 || got[0].UID != "u2" {
			t.Errorf("ActivePods after eviction: %d pods, want only u2", len(got))
		}

		// Never started again, however long, and not evicted twice.
		advance(10 * time.Minute)
		if _, running := rt.Running("u1", "a"); running {
			t.Error("the evicted pod's container runs again")
		}
		if s := e.status("u1"); s.Phase != corev1.PodFailed || s.Reason != "Evicted" {
			t.Errorf("evicted pod after 10m: phase %s reason %q", s.Phase, s.Reason)
		}
		if err := e.m.Evict("u1", "Evicted", msg); err == nil || !strings.Contains(err.Error(), "default/web") {
			t.Errorf("Evict of an evicted pod: %v, want an error naming default/web", err)
		}

		// The manifest changed: a new UID runs.
		again := newTestPod("u3", corev1.RestartPolicyAlways, "a", "b")
		e.m.SetDesired([]*corev1.Pod{again, other})
		advance(2 * time.Minute)
		if s := e.status("u3"); s.Phase != corev1.PodRunning {
			t.Errorf("new pod with the evicted one's name: phase %s %q, want Running", s.Phase, s.Message)
		}
	})
}

func TestEvictRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		done := newTestPod("u1", corev1.RestartPolicyNever, "a")
		e.m.SetDesired([]*corev1.Pod{done})
		e.run()
		defer e.stop()
		if err := rt.ExitByName("u1", "a", 0); err != nil {
			t.Fatal(err)
		}
		advance(time.Second)
		tests := []struct {
			name string
			uid  string
			want string
		}{
			{name: "unknown pod", uid: "nope", want: "evict pod nope: no such pod"},
			{name: "succeeded pod", uid: "u1", want: "evict pod default/web"},
		}
		for _, tt := range tests {
			err := e.m.Evict(k8stypes.UID(tt.uid), "Evicted", "m")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("%s: Evict = %v, want an error starting %q", tt.name, err, tt.want)
			}
		}
		if s := e.status("u1"); s.Phase != corev1.PodSucceeded {
			t.Errorf("succeeded pod after a refused eviction: phase %s", s.Phase)
		}
	})
}
