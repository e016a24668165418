package reconcile

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// newOfflineEnv is newEnv with the offline image fallback on or off.
func newOfflineEnv(t *testing.T, rt *fake.Runtime, fallback bool) *env {
	t.Helper()
	e := &env{t: t, rt: rt, pub: &publisher{}, rec: &recorder{}}
	m, err := NewManager(Config{Runtime: rt, Pods: e.pub, Events: e.rec,
		LogRoot: "/state/pods", NodeName: "board", HostIP: "192.168.1.10",
		OfflineImageFallback: fallback})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

// TestOfflineImageFallback: a pull of policy Always (explicit, or the
// default of an untagged or :latest image) that fails because no registry
// answered runs the image already in the store, with a Warning, when the
// fallback is on. A registry that answered, an image not in the store, an
// IfNotPresent image or the fallback off fail as kubelet does.
func TestOfflineImageFallback(t *testing.T) {
	const cause = `failed to resolve image: failed to do request: Head "https://registry-1.docker.io/v2/library/busybox/manifests/latest": dial tcp: lookup registry-1.docker.io: no such host`
	notFound := errors.New(`failed to resolve image: docker.io/library/busybox:latest: not found`)
	tests := []struct {
		name        string
		image       string
		policy      corev1.PullPolicy // "" is the default by tag
		stored      bool
		pullErr     error
		unreachable bool
		fallback    bool
		wantState   string
		wantEvents  []string
		// wantLater is the container's state after a relist 5 s later
		// ("" when it is wantState).
		wantLater string
	}{
		{
			name:  "untagged, offline, stored: runs the stored image",
			image: "busybox", stored: true, pullErr: errors.New(cause), unreachable: true, fallback: true,
			wantState: "running restarts=0",
			wantEvents: []string{
				`u1 Normal Pulling spec.containers{app}: Pulling image "busybox"`,
				`u1 Warning OfflineFallback spec.containers{app}: Failed to pull image "busybox", no registry answered: ` + cause + `; running the image already present on machine`,
				`u1 Normal Pulled spec.containers{app}: Container image "busybox" already present on machine`,
				`u1 Normal Created spec.containers{app}: Created container: app`,
				`u1 Normal Started spec.containers{app}: Started container app`,
			},
		},
		{
			name:  ":latest with policy Always, offline, stored: runs the stored image",
			image: "busybox:latest", policy: corev1.PullAlways, stored: true, pullErr: errors.New(cause), unreachable: true, fallback: true,
			wantState: "running restarts=0",
			wantEvents: []string{
				`u1 Normal Pulling spec.containers{app}: Pulling image "busybox:latest"`,
				`u1 Warning OfflineFallback spec.containers{app}: Failed to pull image "busybox:latest", no registry answered: ` + cause + `; running the image already present on machine`,
				`u1 Normal Pulled spec.containers{app}: Container image "busybox:latest" already present on machine`,
				`u1 Normal Created spec.containers{app}: Created container: app`,
				`u1 Normal Started spec.containers{app}: Started container app`,
			},
		},
		{
			name:  "the registry answered not found: ErrImagePull, stored image or not",
			image: "busybox", stored: true, pullErr: notFound, fallback: true,
			wantState: "waiting ErrImagePull: " + notFound.Error() + " restarts=0",
			wantEvents: []string{
				`u1 Normal Pulling spec.containers{app}: Pulling image "busybox"`,
				`u1 Warning Failed spec.containers{app}: Failed to pull image "busybox": ` + notFound.Error(),
				`u1 Warning Failed spec.containers{app}: Error: ErrImagePull`,
			},
			wantLater: `waiting ImagePullBackOff: Back-off pulling image "busybox": ErrImagePull: ` + notFound.Error() + " restarts=0",
		},
		{
			name:  "offline, not stored: ErrImagePull",
			image: "busybox", pullErr: errors.New(cause), unreachable: true, fallback: true,
			wantState: "waiting ErrImagePull: " + cause + " restarts=0",
			wantEvents: []string{
				`u1 Normal Pulling spec.containers{app}: Pulling image "busybox"`,
				`u1 Warning Failed spec.containers{app}: Failed to pull image "busybox": ` + cause,
				`u1 Warning Failed spec.containers{app}: Error: ErrImagePull`,
			},
			wantLater: `waiting ImagePullBackOff: Back-off pulling image "busybox": ErrImagePull: ` + cause + " restarts=0",
		},
		{
			name:  "fallback off: ErrImagePull, then ImagePullBackOff, as kubelet",
			image: "busybox", stored: true, pullErr: errors.New(cause), unreachable: true, fallback: false,
			wantState: "waiting ErrImagePull: " + cause + " restarts=0",
			wantEvents: []string{
				`u1 Normal Pulling spec.containers{app}: Pulling image "busybox"`,
				`u1 Warning Failed spec.containers{app}: Failed to pull image "busybox": ` + cause,
				`u1 Warning Failed spec.containers{app}: Error: ErrImagePull`,
			},
			wantLater: `waiting ImagePullBackOff: Back-off pulling image "busybox": ErrImagePull: ` + cause + " restarts=0",
		},
		{
			name:  "IfNotPresent and stored: no pull at all",
			image: "busybox:1.36", stored: true, pullErr: errors.New(cause), unreachable: true, fallback: true,
			wantState: "running restarts=0",
			wantEvents: []string{
				`u1 Normal Pulled spec.containers{app}: Container image "busybox:1.36" already present on machine`,
				`u1 Normal Created spec.containers{app}: Created container: app`,
				`u1 Normal Started spec.containers{app}: Started container app`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				if tt.stored {
					rt.AddImage(tt.image)
				}
				if tt.unreachable {
					rt.SetRegistryUnreachable(tt.image, tt.pullErr)
				} else {
					rt.SetPullError(tt.image, tt.pullErr)
				}
				e := newOfflineEnv(t, rt, tt.fallback)
				pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
				pod.Spec.Containers[0].Image = tt.image
				pod.Spec.Containers[0].ImagePullPolicy = tt.policy
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()

				if got := containerState(e.status("u1"), "app"); got != tt.wantState {
					t.Errorf("app = %s, want %s", got, tt.wantState)
				}
				if diff := cmp.Diff(tt.wantEvents, e.rec.take()); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				// A relist during the pull backoff.
				advance(5 * time.Second)
				e.m.wake("u1")
				synctest.Wait()
				wantLater := tt.wantLater
				if wantLater == "" {
					wantLater = tt.wantState
				}
				if got := containerState(e.status("u1"), "app"); got != wantLater {
					t.Errorf("5 s later, app = %s, want %s", got, wantLater)
				}
			})
		})
	}
}

// TestOfflineImageFallbackEveryStart: a restart pulls again, as kubelet
// does for policy Always; while the board stays offline each start runs
// the stored image again (no pull backoff holds it back), and once a
// registry answers the pulled image runs.
func TestOfflineImageFallbackEveryStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox")
		rt.SetRegistryUnreachable("busybox", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"))
		e := newOfflineEnv(t, rt, true)
		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		pod.Spec.Containers[0].Image = "busybox"
		pod.Spec.Containers[0].ImagePullPolicy = ""
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()
		if got := containerState(e.status("u1"), "app"); got != "running restarts=0" {
			t.Fatalf("app = %s, want running", got)
		}
		e.rec.take()

		if err := rt.ExitByName("u1", "app", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		advance(10 * time.Second) // the first crash-loop backoff
		if got := containerState(e.status("u1"), "app"); got != "running restarts=1" {
			t.Fatalf("after the first exit, app = %s, want running restarts=1", got)
		}
		want := []string{
			`u1 Normal Pulling spec.containers{app}: Pulling image "busybox"`,
			`u1 Warning OfflineFallback spec.containers{app}: Failed to pull image "busybox", no registry answered: dial tcp 127.0.0.1:1: connect: connection refused; running the image already present on machine`,
			`u1 Normal Pulled spec.containers{app}: Container image "busybox" already present on machine`,
			`u1 Normal Created spec.containers{app}: Created container: app`,
			`u1 Normal Started spec.containers{app}: Started container app`,
		}
		if diff := cmp.Diff(want, withoutReason(e.rec.take(), "BackOff")); diff != "" {
			t.Errorf("events of the restart (-want +got):\n%s", diff)
		}

		// The registry is back: the next start pulls.
		rt.SetPullable("busybox")
		if err := rt.ExitByName("u1", "app", 1); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		advance(20 * time.Second)
		if got := containerState(e.status("u1"), "app"); got != "running restarts=2" {
			t.Fatalf("after the second exit, app = %s, want running restarts=2", got)
		}
		want = []string{
			`u1 Normal Pulling spec.containers{app}: Pulling image "busybox"`,
			`u1 Normal Pulled spec.containers{app}: Successfully pulled image "busybox" in 0s (0s including waiting)`,
			`u1 Normal Created spec.containers{app}: Created container: app`,
			`u1 Normal Started spec.containers{app}: Started container app`,
		}
		if diff := cmp.Diff(want, withoutReason(e.rec.take(), "BackOff")); diff != "" {
			t.Errorf("events once the registry answers (-want +got):\n%s", diff)
		}
	})
}

// withoutReason drops the events of this reason (recorded as "uid Type
// Reason field: message").
func withoutReason(events []string, reason string) []string {
	var out []string
	for _, ev := range events {
		if f := strings.Fields(ev); len(f) > 2 && f[2] == reason {
			continue
		}
		out = append(out, ev)
	}
	return out
}
