package reconcile

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// TestIntegrationOfflineImageFallback runs the core on a real containerd
// whose registries do not answer: a mirror for every registry on a
// loopback port nothing listens on, and registry names that are that port
// or do not resolve. The images are in the store, as a flash archive puts
// them there. With the fallback on, an untagged image and a :latest one
// with policy Always run with an OfflineFallback Warning; with it off,
// they fail with ErrImagePull as under kubelet.
func TestIntegrationOfflineImageFallback(t *testing.T) {
	env := testenv.Containerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	rt, err := ctrdruntime.New(ctx, ctrdruntime.Config{Address: env.Address(), StateDir: env.StateDir,
		RuncPath: env.RuncPath, RuncRoot: env.RuncRoot,
		Mirrors: map[string][]string{"*": {"http://" + refused}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	untagged := refused + "/busybox"            // policy Always by default
	latest := "registry.invalid/busybox:latest" // policy Always, written out
	tag, err := name.NewTag("busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := tarball.ImageFromPath(testenv.Image(t, "busybox:latest"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "images.tar")
	if err := imagebuild.WriteDockerArchive(archive, map[string]v1.Image{untagged + ":latest": busybox, latest: busybox}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ImportArchive(ctx, archive); err != nil {
		t.Fatal(err)
	}

	// Off first: its pod starts no container, so nothing of it is left
	// for the second manager to stop.
	for _, fallback := range []bool{false, true} {
		uid := "offline-on"
		if !fallback {
			uid = "offline-off"
		}
		t.Run(uid, func(t *testing.T) {
			pub, rec := &publisher{}, &recorder{}
			m, err := NewManager(Config{Runtime: rt, Pods: pub, Events: rec, LogRoot: t.TempDir(),
				NodeName: "board", HostIP: "127.0.0.1", OfflineImageFallback: fallback})
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: uid, Namespace: "default", UID: types.UID(uid)},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{
					{Name: "untagged", Image: untagged, Command: []string{"sleep", "3600"}},
					{Name: "latest", Image: latest, ImagePullPolicy: corev1.PullAlways, Command: []string{"sleep", "3600"}},
				}},
			}
			m.SetDesired([]*corev1.Pod{pod})
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- m.Run(runCtx) }()
			defer func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}()

			want := map[string]string{"untagged": "running", "latest": "running"}
			if !fallback {
				want = map[string]string{"untagged": "waiting ErrImagePull", "latest": "waiting ErrImagePull"}
			}
			var got map[string]string
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				got = map[string]string{}
				if p := pub.get(pod.UID); p != nil {
					for _, c := range p.Status.ContainerStatuses {
						got[c.Name] = strings.SplitN(stateString(c.State), ":", 2)[0]
					}
				}
				if cmp.Equal(want, got) {
					break
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("container states (-want +got):\n%s", diff)
			}

			events := rec.take()
			for _, c := range pod.Spec.Containers {
				field := "spec.containers{" + c.Name + "}"
				prefix := string(pod.UID) + " Warning OfflineFallback " + field + ": " +
					`Failed to pull image "` + c.Image + `", no registry answered: `
				i := slices.IndexFunc(events, func(ev string) bool { return strings.HasPrefix(ev, prefix) })
				if fallback != (i >= 0) {
					t.Errorf("container %s: OfflineFallback Warning recorded = %v, want %v; events:\n%s", c.Name, i >= 0, fallback, strings.Join(events, "\n"))
				}
				if i >= 0 && !strings.HasSuffix(events[i], "; running the image already present on machine") {
					t.Errorf("container %s: Warning %q does not say what runs", c.Name, events[i])
				}
				failed := string(pod.UID) + " Warning Failed " + field + ": Error: ErrImagePull"
				if !fallback && !slices.Contains(events, failed) {
					t.Errorf("container %s: no %q in events:\n%s", c.Name, failed, strings.Join(events, "\n"))
				}
			}
		})
	}
}
