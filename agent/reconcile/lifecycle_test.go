package reconcile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

func TestImagePullErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.SetPullError("busybox:1.36", errors.New("dial tcp: connection refused"))
		e := newEnv(t, rt, "")
		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
		e.run()
		defer e.stop()

		if got, want := containerState(e.status("u1"), "app"), "waiting ErrImagePull: dial tcp: connection refused restarts=0"; got != want {
			t.Errorf("app = %s, want %s", got, want)
		}
		wantEvents := []string{
			`u1 Normal Pulling spec.containers{app}: Pulling image "busybox:1.36"`,
			`u1 Warning Failed spec.containers{app}: Failed to pull image "busybox:1.36": dial tcp: connection refused`,
			`u1 Warning Failed spec.containers{app}: Error: ErrImagePull`,
		}
		if diff := cmp.Diff(wantEvents, e.rec.take()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		// A relist during the backoff shows ImagePullBackOff.
		advance(5 * time.Second)
		e.m.wake("u1") // as a runtime event or relist would
		synctest.Wait()
		want := `waiting ImagePullBackOff: Back-off pulling image "busybox:1.36": ErrImagePull: dial tcp: connection refused restarts=0`
		if got := containerState(e.status("u1"), "app"); got != want {
			t.Errorf("app = %s, want %s", got, want)
		}
		if st := e.status("u1"); st.Phase != corev1.PodPending {
			t.Errorf("phase = %s, want Pending", st.Phase)
		}
		// The registry comes back: the next attempt (10 s after the
		// failure) pulls and runs.
		rt.SetPullable("busybox:1.36")
		advance(5 * time.Second)
		if got := containerState(e.status("u1"), "app"); got != "running restarts=0" {
			t.Errorf("after the backoff, app = %s", got)
		}
		events := e.rec.take()
		if !slices.Contains(events, `u1 Normal Pulled spec.containers{app}: Successfully pulled image "busybox:1.36" in 0s (0s including waiting)`) {
			t.Errorf("no Pulled event in %q", events)
		}
	})
}

func TestImageNeverPull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		e := newEnv(t, rt, "")
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Spec.Containers[0].ImagePullPolicy = corev1.PullNever
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		msg := `Container image "busybox:1.36" is not present with pull policy of Never`
		if got := containerState(e.status("u1"), "app"); got != "waiting ErrImageNeverPull: "+msg+" restarts=0" {
			t.Errorf("app = %s", got)
		}
		wantEvents := []string{
			"u1 Warning ErrImageNeverPull spec.containers{app}: " + msg,
			"u1 Warning Failed spec.containers{app}: Error: ErrImageNeverPull",
		}
		if diff := cmp.Diff(wantEvents, e.rec.take()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

func TestSpecChangeReplacesPod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("app", true) // like sh as PID 1: waits out the grace period
		e := newEnv(t, rt, "")
		old := newTestPod("old", corev1.RestartPolicyAlways, "app")
		grace := int64(5)
		old.Spec.TerminationGracePeriodSeconds = &grace
		e.m.SetDesired([]*corev1.Pod{old})
		e.run()
		defer e.stop()
		oldID, _ := rt.Running("old", "app")
		e.rec.take()

		changed := newTestPod("new", corev1.RestartPolicyAlways, "app")
		changed.Spec.Containers[0].Args = []string{"--v2"}
		start := time.Now()
		e.m.SetDesired([]*corev1.Pod{changed})
		synctest.Wait()
		// While the old pod stops, it is published terminating and the
		// new one waits for the name.
		if p := e.pub.get("old"); p == nil || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 5 {
			t.Fatalf("old pod while terminating: %+v", p)
		}
		if _, ok := rt.Running("new", "app"); ok {
			t.Error("the new pod started before the old one stopped")
		}
		advance(5 * time.Second)
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("replacement took %v, want the 5 s grace period", took)
		}
		if e.pub.get("old") != nil || !slices.Contains(e.pub.removed, "old") {
			t.Error("old pod not removed from the publisher")
		}
		if _, ok := rt.Running("new", "app"); !ok {
			t.Error("new pod not running")
		}
		if !slices.Contains(rt.Calls(), "StopContainer "+oldID+" grace=5s") {
			t.Errorf("calls %q lack the graceful stop", rt.Calls())
		}
		if !slices.Contains(rt.Calls(), "RemoveSandbox default/web") {
			t.Error("old sandbox not removed")
		}
		events := e.rec.take()
		if events[0] != "old Normal Killing spec.containers{app}: Stopping container app" {
			t.Errorf("first event = %q, want Killing", events[0])
		}

		// Removing the pod terminates it too, with its grace period (the
		// default 30 s).
		e.m.SetDesired(nil)
		advance(29 * time.Second)
		if e.pub.get("new") == nil {
			t.Error("pod gone before its grace period ended")
		}
		advance(time.Second)
		if e.pub.get("new") != nil {
			t.Error("removed pod still published")
		}
		if list, _ := rt.ListContainers(t.Context()); len(list) != 0 {
			t.Errorf("containers left: %v", list)
		}
	})
}

func TestAdoptionAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stateFile := filepath.Join(t.TempDir(), "agent-state.json")
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")

		first := newEnv(t, rt, stateFile)
		first.m.SetDesired([]*corev1.Pod{pod})
		first.run()
		rt.ExitByName("u1", "app", 1) // one restart
		synctest.Wait()
		advance(time.Minute)
		before := first.status("u1")
		created := first.pub.get("u1").CreationTimestamp
		first.stop() // like SIGKILL: containers keep running
		calls := len(rt.Calls())

		advance(time.Hour)
		second := newEnv(t, rt, stateFile)
		second.run() // runs before the manifests are read: kills nothing
		if len(rt.Calls()) != calls {
			t.Errorf("the restarted agent acted before it knew the desired pods: %q", rt.Calls()[calls:])
		}
		second.m.SetDesired([]*corev1.Pod{pod})
		synctest.Wait()
		defer second.stop()
		for _, c := range rt.Calls()[calls:] {
			if strings.HasPrefix(c, "StartContainer") || strings.HasPrefix(c, "StopContainer") || strings.HasPrefix(c, "RunSandbox") {
				t.Errorf("adoption made %s", c)
			}
		}
		after := second.status("u1")
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("status changed across the restart (-before +after):\n%s", diff)
		}
		if got := second.pub.get("u1").CreationTimestamp; !got.Equal(&created) {
			t.Errorf("creationTimestamp %v, want %v", got, created)
		}
		// The restored backoff still applies: a crash now waits 10 s.
		rt.ExitByName("u1", "app", 1)
		synctest.Wait()
		if got := containerState(second.status("u1"), "app"); !strings.HasPrefix(got, "running restarts=2") {
			// First crash after a long clean run resets: immediate restart.
			t.Errorf("app = %s", got)
		}
	})
}

func TestCorruptStateFileIsIgnored(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "agent-state.json")
	if err := os.WriteFile(stateFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(Config{Runtime: fake.New(), Pods: &publisher{}, Events: &recorder{}, StateFile: stateFile}); err != nil {
		t.Fatalf("NewManager with a corrupt state file: %v", err)
	}
}

func TestNewManagerNeedsItsParts(t *testing.T) {
	for _, cfg := range []Config{{}, {Runtime: fake.New()}, {Runtime: fake.New(), Pods: &publisher{}}} {
		if _, err := NewManager(cfg); err == nil {
			t.Errorf("NewManager(%+v) succeeded", cfg)
		}
	}
}

func TestStopAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("slow", true)
		e := newEnv(t, rt, "")
		a := newTestPod("a", corev1.RestartPolicyAlways, "slow")
		a.Name = "a"
		b := newTestPod("b", corev1.RestartPolicyAlways, "slow")
		b.Name = "b"
		ga, gb := int64(20), int64(10)
		a.Spec.TerminationGracePeriodSeconds, b.Spec.TerminationGracePeriodSeconds = &ga, &gb
		e.m.SetDesired([]*corev1.Pod{a, b})
		e.run()
		defer e.stop()
		start := time.Now()
		if err := e.m.StopAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Concurrently: the longest grace period, not the sum.
		if took := time.Since(start); took != 20*time.Second {
			t.Errorf("StopAll took %v, want 20s", took)
		}
		synctest.Wait()
		list, _ := rt.ListContainers(t.Context())
		for _, c := range list {
			if c.State != "exited" {
				t.Errorf("container %s still %s", c.Name, c.State)
			}
		}
		// Nothing starts again.
		advance(time.Minute)
		if _, ok := rt.Running("a", "slow"); ok {
			t.Error("a pod restarted after StopAll")
		}
		e.m.SetDesired([]*corev1.Pod{a})
		advance(time.Minute)
		if _, ok := rt.Running("a", "slow"); ok {
			t.Error("SetDesired after StopAll started a pod")
		}
	})
}
