package reconcile

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/backoff"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/runtime/fake"
)

// lifecycleCalls returns the runtime calls since the first n that start,
// stop or remove containers or sandboxes.
func lifecycleCalls(rt *fake.Runtime, n int) []string {
	var out []string
	for _, c := range rt.Calls()[n:] {
		for _, p := range []string{"StartContainer ", "StopContainer ", "RemoveContainer ", "RunSandbox", "RemoveSandbox"} {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
			}
		}
	}
	return out
}

// sidecarPod is pod u1 with a sidecar (restartable init container) "log"
// and the containers app and web, all busybox:1.36.
func sidecarPod(policy corev1.RestartPolicy) *corev1.Pod {
	p := newTestPod("u1", policy, "app", "web")
	always := corev1.ContainerRestartPolicyAlways
	p.Spec.InitContainers = []corev1.Container{{Name: "log", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, RestartPolicy: &always}}
	return p
}

// A running pod whose container's image changes under the same UID (kubectl
// set image: the API server lets an update change only images and a few
// scheduling fields) keeps its sandbox and its other containers; only the
// changed container is killed, with kubelet's Killing event "Container
// <name> definition changed, will be restarted" (computePodActions'
// containerChanged), and started again at once with the new image,
// restartCount 1, whatever the restart policy. A sidecar is restarted the
// same way with kubelet's "Init container <name> definition changed".
func TestImageUpdateRestartsContainer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    corev1.RestartPolicy
		change    func(p *corev1.Pod)
		container string // the changed one
		field     string
		message   string
		states    []string // log, app, web after the change
	}{{
		name:      "a container's image",
		policy:    corev1.RestartPolicyAlways,
		change:    func(p *corev1.Pod) { p.Spec.Containers[1].Image = "busybox:1.37" },
		container: "web",
		field:     "spec.containers{web}",
		message:   "Container web definition changed, will be restarted",
		states:    []string{"running restarts=0", "running restarts=0", "running restarts=1"},
	}, {
		name:      "a container's image under restartPolicy Never",
		policy:    corev1.RestartPolicyNever,
		change:    func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox:1.37" },
		container: "app",
		field:     "spec.containers{app}",
		message:   "Container app definition changed, will be restarted",
		states:    []string{"running restarts=0", "running restarts=1", "running restarts=0"},
	}, {
		name:      "a sidecar's image",
		policy:    corev1.RestartPolicyAlways,
		change:    func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "busybox:1.37" },
		container: "log",
		field:     "spec.initContainers{log}",
		message:   "Init container log definition changed",
		states:    []string{"running restarts=1", "running restarts=0", "running restarts=0"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				rt.AddImage("busybox:1.37")
				e := newEnv(t, rt, "")
				pod := sidecarPod(tc.policy)
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()
				advance(time.Minute)
				before := e.pub.get("u1")
				if got := podLine(before.Status); got[0] != string(corev1.PodRunning) {
					t.Fatalf("before the change: %q", got)
				}
				oldID, _ := rt.Running("u1", tc.container)
				calls := len(rt.Calls())
				e.rec.take()

				changed := pod.DeepCopy()
				tc.change(changed)
				e.m.SetDesired([]*corev1.Pod{changed})
				advance(time.Minute)

				newID, ok := rt.Running("u1", tc.container)
				if !ok {
					t.Fatalf("%s not running after the change", tc.container)
				}
				wantCalls := []string{
					"StopContainer " + oldID + " grace=30s",
					"StartContainer default/web/" + tc.container + " attempt=1",
				}
				if diff := cmp.Diff(wantCalls, lifecycleCalls(rt, calls)); diff != "" {
					t.Errorf("runtime calls after the change (-want +got):\n%s", diff)
				}
				cfg, _ := rt.Config(newID)
				if cfg.Spec.Image != "busybox:1.37" || cfg.Image.Ref != "busybox:1.37" {
					t.Errorf("restarted %s runs spec image %q, image %q; want busybox:1.37", tc.container, cfg.Spec.Image, cfg.Image.Ref)
				}
				wantEvents := []string{
					"u1 Normal Killing " + tc.field + ": " + tc.message,
					"u1 Normal Pulled " + tc.field + `: Container image "busybox:1.37" already present on machine`,
					"u1 Normal Created " + tc.field + ": Created container: " + tc.container,
					"u1 Normal Started " + tc.field + ": Started container " + tc.container,
				}
				if diff := cmp.Diff(wantEvents, e.rec.take()); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				after := e.pub.get("u1")
				st := after.Status
				var got []string
				for _, n := range []string{"log", "app", "web"} {
					got = append(got, containerState(st, n))
				}
				if diff := cmp.Diff(tc.states, got); diff != "" {
					t.Errorf("log, app, web (-want +got):\n%s", diff)
				}
				if after.UID != "u1" || st.PodIP != before.Status.PodIP || !st.StartTime.Equal(before.Status.StartTime) {
					t.Errorf("pod after the change: uid %s, IP %q, started %v; want u1, %q, %v (the same pod)",
						after.UID, st.PodIP, st.StartTime, before.Status.PodIP, before.Status.StartTime)
				}
				changed.Spec.NodeName = "board" // as the agent publishes it
				if diff := cmp.Diff(changed.Spec, after.Spec); diff != "" {
					t.Errorf("published spec (-want +got):\n%s", diff)
				}
				// Nothing more happens: the restarted container stays.
				calls = len(rt.Calls())
				advance(10 * time.Minute)
				if got := lifecycleCalls(rt, calls); len(got) != 0 {
					t.Errorf("runtime calls once restarted: %q", got)
				}
			})
		})
	}
}

// A new image that cannot be pulled goes through kubelet's pull path: the
// old container is killed, the start fails with ErrImagePull, then
// ImagePullBackOff, and the container starts once the image can be
// pulled; the other containers run on untouched.
func TestImageUpdateMissingImage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app", "web")
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		advance(time.Minute)
		appID, _ := rt.Running("u1", "app")
		webID, _ := rt.Running("u1", "web")
		calls := len(rt.Calls())
		e.rec.take()

		changed := pod.DeepCopy()
		changed.Spec.Containers[1].Image = "busybox:9.9"
		e.m.SetDesired([]*corev1.Pod{changed})
		synctest.Wait()
		// The killed container's exit wakes the worker again (kubelet's
		// PLEG event), which finds the pull backing off.
		const cause = "busybox:9.9: not found"
		wantEvents := []string{
			"u1 Normal Killing spec.containers{web}: Container web definition changed, will be restarted",
			`u1 Normal Pulling spec.containers{web}: Pulling image "busybox:9.9"`,
			`u1 Warning Failed spec.containers{web}: Failed to pull image "busybox:9.9": ` + cause,
			"u1 Warning Failed spec.containers{web}: Error: ErrImagePull",
			`u1 Normal BackOff spec.containers{web}: Back-off pulling image "busybox:9.9"`,
			"u1 Warning Failed spec.containers{web}: Error: ImagePullBackOff",
		}
		if diff := cmp.Diff(wantEvents, e.rec.take()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		want := `waiting ImagePullBackOff: Back-off pulling image "busybox:9.9": ErrImagePull: ` + cause + " restarts=0"
		if got := containerState(e.status("u1"), "web"); got != want {
			t.Errorf("web = %s, want %s", got, want)
		}
		advance(10 * time.Second) // the pull backoff's end: pulled again
		if got, want := containerState(e.status("u1"), "web"), "waiting ErrImagePull: "+cause+" restarts=0"; got != want {
			t.Errorf("web = %s, want %s", got, want)
		}

		rt.SetPullable("busybox:9.9")
		advance(time.Minute)
		if got := containerState(e.status("u1"), "web"); got != "running restarts=1" {
			t.Errorf("web once the image can be pulled = %s, want running restarts=1", got)
		}
		if got := containerState(e.status("u1"), "app"); got != "running restarts=0" {
			t.Errorf("app = %s, want running restarts=0", got)
		}
		var starts, stopped []string
		for _, c := range lifecycleCalls(rt, calls) {
			switch {
			case strings.HasPrefix(c, "StartContainer "):
				starts = append(starts, c)
			case strings.HasPrefix(c, "StopContainer "):
				stopped = append(stopped, c)
			}
		}
		if diff := cmp.Diff([]string{"StartContainer default/web/web attempt=1"}, starts); diff != "" {
			t.Errorf("starts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"StopContainer " + webID + " grace=30s"}, stopped); diff != "" {
			t.Errorf("stops (-want +got):\n%s", diff)
		}
		if id, _ := rt.Running("u1", "app"); id != appID {
			t.Errorf("app runs as %s, want the untouched %s", id, appID)
		}
	})
}

// The other fields a pod update may change (activeDeadlineSeconds,
// tolerations, terminationGracePeriodSeconds) and an image spelt
// differently that names the same image are only republished: no
// container is touched. The new terminationGracePeriodSeconds is the
// grace of the pod's deletion.
func TestPodUpdateWithoutRestart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *corev1.Pod)
		// wantGrace is the stop grace when the pod is deleted afterwards.
		wantGrace string
		// anyWatch: the watch is not checked for a single MODIFIED (the
		// status's image follows the spec's spelling, agent/podstatus,
		// and may show in a second one).
		anyWatch bool
	}{{
		name:      "activeDeadlineSeconds",
		change:    func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = int64p(600) },
		wantGrace: "30s",
	}, {
		name: "tolerations",
		change: func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule})
		},
		wantGrace: "30s",
	}, {
		name:      "terminationGracePeriodSeconds",
		change:    func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = int64p(5) },
		wantGrace: "5s",
	}, {
		// The runtime reports the normalized name; kubelet, which hashes
		// the spec's string, would restart here, but the image is the
		// same one.
		name:      "the image's normalized name",
		change:    func(p *corev1.Pod) { p.Spec.Containers[0].Image = "docker.io/library/busybox:1.36" },
		wantGrace: "30s",
		anyWatch:  true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				e := newEnv(t, rt, "")
				e.watchPods()
				pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()
				advance(time.Minute)
				pods := e.watch()
				calls := len(rt.Calls())
				e.rec.take()

				changed := pod.DeepCopy()
				tc.change(changed)
				e.m.SetDesired([]*corev1.Pod{changed})
				advance(time.Minute)

				if got := lifecycleCalls(rt, calls); len(got) != 0 {
					t.Errorf("runtime calls: %q", got)
				}
				if got := e.rec.take(); len(got) != 0 {
					t.Errorf("events: %q", got)
				}
				if got := drain(pods, time.Time{}); !tc.anyWatch {
					if diff := cmp.Diff([]string{"MODIFIED u1 app=running restarts=0"}, got); diff != "" {
						t.Errorf("watch (-want +got):\n%s", diff)
					}
				} else if len(got) == 0 || got[len(got)-1] != "MODIFIED u1 app=running restarts=0" {
					t.Errorf("watch %q, want the pod MODIFIED, still running, not restarted", got)
				}
				changed.Spec.NodeName = "board" // as the agent publishes it
				if diff := cmp.Diff(changed.Spec, e.pub.get("u1").Spec); diff != "" {
					t.Errorf("published spec (-want +got):\n%s", diff)
				}

				e.m.SetDesired(nil)
				advance(time.Minute)
				id := ""
				for _, c := range rt.Calls()[calls:] {
					if strings.HasPrefix(c, "StopContainer ") {
						id = c
					}
				}
				if !strings.HasSuffix(id, " grace="+tc.wantGrace) {
					t.Errorf("deletion stopped the container with %q, want grace=%s", id, tc.wantGrace)
				}
			})
		})
	}
}

func TestImageChanged(t *testing.T) {
	for _, tc := range []struct {
		spec, running string
		want          bool
	}{
		{"busybox:1.36", "busybox:1.36", false},
		{"busybox:1.36", "docker.io/library/busybox:1.36", false},
		{"busybox", "docker.io/library/busybox:latest", false},
		{"registry.local:5000/app:v1", "registry.local:5000/app:v1", false},
		{"busybox:1.37", "docker.io/library/busybox:1.36", true},
		{"busybox", "docker.io/library/busybox:1.36", true},
		{"quay.io/busybox:1.36", "docker.io/library/busybox:1.36", true},
		{"busybox@sha256:" + strings.Repeat("a", 64), "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64), false},
		{"busybox@sha256:" + strings.Repeat("b", 64), "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64), true},
		{"Not A Reference", "docker.io/library/busybox:1.36", true},
		// An instance that does not say which image it runs is kept.
		{"busybox:1.37", "", false},
	} {
		if got := imageChanged(tc.spec, runtime.Image{Ref: tc.running}); got != tc.want {
			t.Errorf("imageChanged(%q, %q) = %v, want %v", tc.spec, tc.running, got, tc.want)
		}
	}
}

// ComputeActions' part of an image update, kubelet's computePodActions and
// computeInitContainerActions with containerChanged: a running container
// or sidecar whose image changed is killed with kubelet's message and
// started at once with the next attempt, even within its crash-loop
// backoff; a running plain init container is left to finish, and an exited
// container starts with the new image as it would anyway.
func TestComputeActionsImageChanged(t *testing.T) {
	const (
		run = runtime.ContainerRunning
		ex  = runtime.ContainerExited
	)
	// running is an instance of name running image.
	running := func(id, name string, attempt int32, image string) runtime.ContainerStatus {
		c := inst(id, name, attempt, run, 0, 0)
		c.Image = runtime.Image{Ref: image}
		return c
	}
	sidecarPod := func(apps ...string) *corev1.Pod {
		p := testPod(corev1.RestartPolicyAlways, []string{"log"}, apps...)
		always := corev1.ContainerRestartPolicyAlways
		p.Spec.InitContainers[0].RestartPolicy = &always
		return p
	}
	withImage := func(p *corev1.Pod, name, image string) *corev1.Pod {
		for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range cs {
				if cs[i].Name == name {
					cs[i].Image = image
				}
			}
		}
		return p
	}
	// crashed is app's backoff after a crash at 50 s: a restart before
	// 60 s would wait.
	crashed := backoff.NewDefault()
	crashed.Next(backoff.ContainerKey(ref.UID, "app"), at(50), at(50))
	tests := []struct {
		name     string
		pod      *corev1.Pod
		observed []runtime.ContainerStatus
		bo       *backoff.Backoff
		want     brief
		killing  map[string]string
	}{{
		name:     "same image: nothing",
		pod:      testPod(corev1.RestartPolicyAlways, nil, "app", "web"),
		observed: []runtime.ContainerStatus{running("c1", "app", 0, "busybox"), running("c2", "web", 0, "busybox")},
	}, {
		name:     "one container's image: that one restarted",
		pod:      withImage(testPod(corev1.RestartPolicyAlways, nil, "app", "web"), "web", "busybox:1.37"),
		observed: []runtime.ContainerStatus{running("c1", "app", 0, "busybox"), running("c2", "web", 2, "busybox")},
		want:     brief{Start: []string{"web@3"}, Kill: []string{"c2"}},
		killing:  map[string]string{"c2": "Container web definition changed, will be restarted"},
	}, {
		name: "within the crash-loop backoff: restarted at once",
		pod:  withImage(testPod(corev1.RestartPolicyAlways, nil, "app"), "app", "busybox:1.37"),
		observed: []runtime.ContainerStatus{
			inst("c1", "app", 0, ex, 50, 1), running("c2", "app", 1, "busybox"),
		},
		bo:      crashed,
		want:    brief{Start: []string{"app@2"}, Kill: []string{"c2"}},
		killing: map[string]string{"c2": "Container app definition changed, will be restarted"},
	}, {
		name:     "under restartPolicy Never: restarted too",
		pod:      withImage(testPod(corev1.RestartPolicyNever, nil, "app"), "app", "busybox:1.37"),
		observed: []runtime.ContainerStatus{running("c1", "app", 0, "busybox")},
		want:     brief{Start: []string{"app@1"}, Kill: []string{"c1"}},
		killing:  map[string]string{"c1": "Container app definition changed, will be restarted"},
	}, {
		name:     "a sidecar's image",
		pod:      withImage(sidecarPod("app"), "log", "busybox:1.37"),
		observed: []runtime.ContainerStatus{running("c1", "log", 0, "busybox"), running("c2", "app", 0, "busybox")},
		want:     brief{Start: []string{"init:log@1"}, Kill: []string{"c1"}},
		killing:  map[string]string{"c1": "Init container log definition changed"},
	}, {
		name:     "a running plain init container: left to finish",
		pod:      withImage(testPod(corev1.RestartPolicyAlways, []string{"setup"}, "app"), "setup", "busybox:1.37"),
		observed: []runtime.ContainerStatus{running("c1", "setup", 0, "busybox")},
	}, {
		name: "an exited container: started with the spec's image as always",
		pod:  withImage(testPod(corev1.RestartPolicyAlways, nil, "app"), "app", "busybox:1.37"),
		observed: []runtime.ContainerStatus{func() runtime.ContainerStatus {
			c := inst("c1", "app", 0, ex, 50, 0)
			c.Image = runtime.Image{Ref: "busybox"}
			return c
		}()},
		want: brief{Start: []string{"app@1"}},
	}, {
		name:     "an instance that names no image: kept",
		pod:      withImage(testPod(corev1.RestartPolicyAlways, nil, "app"), "app", "busybox:1.37"),
		observed: []runtime.ContainerStatus{inst("c1", "app", 0, run, 0, 0)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bo := tt.bo
			if bo == nil {
				bo = backoff.NewDefault()
			}
			a := ComputeActions(tt.pod, sb, tt.observed, nil, bo, at(55))
			if diff := cmp.Diff(tt.want, summarize(a)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.killing, a.Killing); diff != "" {
				t.Errorf("Killing messages (-want +got):\n%s", diff)
			}
		})
	}
}
