package reconcile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/agent/runtime/fake"
	"github.com/podboot/podboot/internal/testenv"
)

// loadPod reads a Kubernetes website example in place from
// ../shared/conformance and gives it a UID.
func loadPod(t *testing.T, file string, uid string) *corev1.Pod {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.ConformanceDir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	p.UID = types.UID(uid)
	p.Namespace = "default"
	return &p
}

// podLine is what kubectl get pods and the conditions show.
func podLine(s corev1.PodStatus) []string {
	out := []string{string(s.Phase)}
	for _, c := range s.Conditions {
		out = append(out, string(c.Type)+"="+string(c.Status))
	}
	for _, c := range s.InitContainerStatuses {
		line := "init " + c.Name + ": " + containerState(s, c.Name)
		if c.Ready {
			line += " ready"
		}
		if c.Started != nil && *c.Started {
			line += " started"
		}
		out = append(out, line)
	}
	for _, c := range s.ContainerStatuses {
		line := c.Name + ": " + containerState(s, c.Name)
		if c.Ready {
			line += " ready"
		}
		out = append(out, line)
	}
	return out
}

// TestSidecarLocalhostExample runs the Kubernetes website's sidecar
// example: the client sidecar starts first, then the web server; the
// sidecar is restarted with backoff whenever it exits; on deletion the web
// server is stopped before the sidecar.
func TestSidecarLocalhostExample(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("registry.k8s.io/busybox:1.27.2")
		rt.AddImage("nginx:1.29")
		e := newEnv(t, rt, "")
		pod := loadPod(t, "pods/multi-container/localhost.yaml", "u1")
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()

		var starts []string
		for _, c := range rt.Calls() {
			if strings.HasPrefix(c, "RunSandbox") || strings.HasPrefix(c, "StartContainer") {
				starts = append(starts, c)
			}
		}
		wantStarts := []string{
			"RunSandbox default/localhost-example hostname=localhost-example",
			"StartContainer default/localhost-example/client attempt=0",
			"StartContainer default/localhost-example/web attempt=0",
		}
		if diff := cmp.Diff(wantStarts, starts); diff != "" {
			t.Errorf("start order (-want +got):\n%s", diff)
		}
		running := []string{"Running", "PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True",
			"init client: running restarts=0 ready started", "web: running restarts=0 ready"}
		if diff := cmp.Diff(running, podLine(e.status("u1"))); diff != "" {
			t.Errorf("running (-want +got):\n%s", diff)
		}

		// The sidecar exits (restartPolicy of the pod is Always, but a
		// sidecar restarts under any policy): restarted at once, then with
		// a 10 s backoff.
		advance(time.Minute)
		if err := rt.ExitByName("u1", "client", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := containerState(e.status("u1"), "client"); got != "running restarts=1" {
			t.Errorf("after the first exit, client = %s", got)
		}
		if err := rt.ExitByName("u1", "client", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		st := e.status("u1")
		wantBackoff := "waiting CrashLoopBackOff: back-off 10s restarting failed container=client pod=localhost-example_default(u1) restarts=1"
		if got := containerState(st, "client"); got != wantBackoff {
			t.Errorf("after the second exit, client = %s, want %s", got, wantBackoff)
		}
		if st.Phase != corev1.PodRunning {
			t.Errorf("phase during the sidecar's backoff = %s, want Running", st.Phase)
		}
		advance(10 * time.Second)
		if got := containerState(e.status("u1"), "client"); got != "running restarts=2" {
			t.Errorf("after the backoff, client = %s", got)
		}

		// Deletion: web first, then the sidecar.
		webID, _ := rt.Running("u1", "web")
		clientID, _ := rt.Running("u1", "client")
		calls := len(rt.Calls())
		e.m.SetDesired(nil)
		synctest.Wait()
		var stops []string
		for _, c := range rt.Calls()[calls:] {
			if strings.HasPrefix(c, "StopContainer") {
				stops = append(stops, strings.Fields(c)[1])
			}
		}
		if diff := cmp.Diff([]string{webID, clientID}, stops); diff != "" {
			t.Errorf("stop order, want web then client (-want +got):\n%s", diff)
		}
		if !slices.Contains(e.pub.removed, "u1") {
			t.Error("pod not removed after deletion")
		}
	})
}

// TestSidecarDoesNotKeepPodAlive: a Never pod whose only regular container
// completes is Succeeded once its sidecar is stopped, and the sidecar is
// not restarted.
func TestSidecarDoesNotKeepPodAlive(t *testing.T) {
	for _, tt := range []struct {
		code  int32
		phase corev1.PodPhase
	}{{0, corev1.PodSucceeded}, {2, corev1.PodFailed}} {
		t.Run(string(tt.phase), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				e := newEnv(t, rt, "")
				pod := newTestPod("u1", corev1.RestartPolicyNever, "job")
				always := corev1.ContainerRestartPolicyAlways
				pod.Spec.InitContainers = []corev1.Container{{Name: "logs", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, RestartPolicy: &always}}
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()
				if st := e.status("u1"); st.Phase != corev1.PodRunning {
					t.Fatalf("phase %s, want Running", st.Phase)
				}
				if err := rt.ExitByName("u1", "job", tt.code); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				advance(time.Minute)
				st := e.status("u1")
				if st.Phase != tt.phase {
					t.Errorf("phase %s, want %s", st.Phase, tt.phase)
				}
				if got := containerState(st, "logs"); got != "terminated Error 143 restarts=0" {
					t.Errorf("sidecar = %s, want stopped (SIGTERM) and not restarted", got)
				}
				if _, ok := rt.Running("u1", "logs"); ok {
					t.Error("sidecar still running")
				}
			})
		})
	}
}
