package reconcile

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

func TestPodRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Spec.Hostname = "myhost"
		e.m.SetDesired([]*corev1.Pod{pod})
		start := time.Now()
		e.run()
		defer e.stop()

		got := e.pub.get("u1")
		if got == nil {
			t.Fatal("pod not published")
		}
		if got.Status.Phase != corev1.PodRunning || containerState(got.Status, "app") != "running restarts=0" {
			t.Errorf("status: phase %s, app %s", got.Status.Phase, containerState(got.Status, "app"))
		}
		if !got.CreationTimestamp.Time.Equal(start.Truncate(time.Second)) || got.Spec.NodeName != "board" || got.Status.PodIP == "" || got.Status.HostIP != "192.168.1.10" {
			t.Errorf("published pod: created %v, node %q, podIP %q, hostIP %q", got.CreationTimestamp, got.Spec.NodeName, got.Status.PodIP, got.Status.HostIP)
		}
		wantEvents := []string{
			`u1 Normal Pulled spec.containers{app}: Container image "busybox:1.36" already present on machine`,
			`u1 Normal Created spec.containers{app}: Created container: app`,
			`u1 Normal Started spec.containers{app}: Started container app`,
		}
		if diff := cmp.Diff(wantEvents, e.rec.take()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		wantCalls := []string{
			"RunSandbox default/web hostname=myhost",
			"EnsureImage busybox:1.36 Never",
			"StartContainer default/web/app attempt=0",
		}
		if diff := cmp.Diff(wantCalls, rt.Calls()); diff != "" {
			t.Errorf("runtime calls (-want +got):\n%s", diff)
		}
		id, _ := rt.Running("u1", "app")
		cfg, _ := rt.Config(id)
		if cfg.LogDir != "/state/pods/default_web_u1/app" || cfg.TerminationGracePeriod != 30*time.Second {
			t.Errorf("container config: LogDir %q, grace %v", cfg.LogDir, cfg.TerminationGracePeriod)
		}
		// Idle: nothing more happens.
		advance(5 * time.Minute)
		if n := len(rt.Calls()); n != 3 {
			t.Errorf("idle pod made %d runtime calls, want 3", n)
		}
	})
}

func TestCrashLoopBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
		e.run()
		defer e.stop()

		// crash makes the running instance exit 1 after it ran for `ran`,
		// and returns how long the next start took.
		crash := func(ran time.Duration) time.Duration {
			t.Helper()
			advance(ran)
			if err := rt.ExitByName("u1", "app", 1); err != nil {
				t.Fatal(err)
			}
			exited := time.Now()
			synctest.Wait()
			for i := 0; ; i++ {
				if _, ok := rt.Running("u1", "app"); ok {
					return time.Since(exited)
				}
				if i > 1000 {
					t.Fatal("container never restarted")
				}
				advance(time.Second)
			}
		}
		s := time.Second
		var delays []time.Duration
		for range 9 {
			delays = append(delays, crash(0))
		}
		want := []time.Duration{0, 10 * s, 20 * s, 40 * s, 80 * s, 160 * s, 300 * s, 300 * s, 300 * s}
		if diff := cmp.Diff(want, delays); diff != "" {
			t.Errorf("restart delays (-want +got):\n%s", diff)
		}

		// In backoff the status says so, in kubelet's words.
		advance(0)
		rt.ExitByName("u1", "app", 1)
		synctest.Wait()
		st := e.status("u1")
		wantState := "waiting CrashLoopBackOff: back-off 5m0s restarting failed container=app pod=web_default(u1) restarts=9"
		if got := containerState(st, "app"); got != wantState {
			t.Errorf("app = %s, want %s", got, wantState)
		}
		if st.Phase != corev1.PodRunning {
			t.Errorf("phase = %s, want Running", st.Phase)
		}
		events := e.rec.take()
		if last := events[len(events)-1]; last != "u1 Warning BackOff spec.containers{app}: Back-off restarting failed container app in pod web_default(u1)" {
			t.Errorf("last event = %q", last)
		}
		advance(300 * s)

		// Ten clean minutes (and a second) reset the backoff.
		if d := crash(10*time.Minute + s); d != 0 {
			t.Errorf("restart after a clean 10 min took %v, want 0", d)
		}
		if d := crash(0); d != 10*s {
			t.Errorf("next restart took %v, want 10s", d)
		}
		// Only the newest instance and the newest exited one are kept.
		list, _ := rt.ListContainers(t.Context())
		if len(list) != 2 {
			t.Errorf("runtime holds %d instances, want 2", len(list))
		}
	})
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		name      string
		policy    corev1.RestartPolicy
		exits     []int32
		wantPhase corev1.PodPhase
		wantApp   string
	}{
		{"Never, exit 0: Succeeded", corev1.RestartPolicyNever, []int32{0}, corev1.PodSucceeded, "terminated Completed 0 restarts=0"},
		{"Never, exit 2: Failed", corev1.RestartPolicyNever, []int32{2}, corev1.PodFailed, "terminated Error 2 restarts=0"},
		{"OnFailure, exit 1 then 0: Succeeded", corev1.RestartPolicyOnFailure, []int32{1, 0}, corev1.PodSucceeded, "terminated Completed 0 restarts=1"},
		{"Always, exit 0: restarted", corev1.RestartPolicyAlways, []int32{0}, corev1.PodRunning, "running restarts=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				e := newEnv(t, rt, "")
				e.m.SetDesired([]*corev1.Pod{newTestPod("u1", tt.policy, "app")})
				e.run()
				defer e.stop()
				for _, code := range tt.exits {
					if err := rt.ExitByName("u1", "app", code); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
				}
				advance(time.Minute)
				st := e.status("u1")
				if st.Phase != tt.wantPhase || containerState(st, "app") != tt.wantApp {
					t.Errorf("phase %s app %s, want %s %s", st.Phase, containerState(st, "app"), tt.wantPhase, tt.wantApp)
				}
			})
		})
	}
}

func TestInitContainers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Spec.InitContainers = []corev1.Container{
			{Name: "i1", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent},
			{Name: "i2", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent},
		}
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		steps := []struct {
			exit  string
			phase corev1.PodPhase
			want  []string // i1, i2, app
		}{
			{"", corev1.PodPending, []string{"running restarts=0", "waiting PodInitializing restarts=0", "waiting PodInitializing restarts=0"}},
			{"i1", corev1.PodPending, []string{"terminated Completed 0 restarts=0", "running restarts=0", "waiting PodInitializing restarts=0"}},
			{"i2", corev1.PodRunning, []string{"terminated Completed 0 restarts=0", "terminated Completed 0 restarts=0", "running restarts=0"}},
		}
		for _, s := range steps {
			if s.exit != "" {
				if err := rt.ExitByName("u1", s.exit, 0); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
			}
			st := e.status("u1")
			got := []string{containerState(st, "i1"), containerState(st, "i2"), containerState(st, "app")}
			if diff := cmp.Diff(s.want, got); diff != "" || st.Phase != s.phase {
				t.Errorf("after %q exited: phase %s (want %s), containers (-want +got):\n%s", s.exit, st.Phase, s.phase, diff)
			}
		}
	})
}

func TestFailingInitWithNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		pod := newTestPod("u1", corev1.RestartPolicyNever, "app")
		pod.Spec.InitContainers = []corev1.Container{{Name: "i1", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent}}
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		rt.ExitByName("u1", "i1", 3)
		synctest.Wait()
		advance(time.Minute)
		st := e.status("u1")
		if st.Phase != corev1.PodFailed || containerState(st, "i1") != "terminated Error 3 restarts=0" || containerState(st, "app") != "waiting PodInitializing restarts=0" {
			t.Errorf("phase %s, i1 %s, app %s", st.Phase, containerState(st, "i1"), containerState(st, "app"))
		}
		for _, c := range rt.Calls() {
			if c == "StartContainer default/web/app attempt=0" || c == "StartContainer default/web/i1 attempt=1" {
				t.Errorf("unexpected %s", c)
			}
		}
	})
}
