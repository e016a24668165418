package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/runtime/fake"
)

func volumePod(uid types.UID, hostDir string, typ corev1.HostPathType, mounts ...corev1.VolumeMount) *corev1.Pod {
	p := newTestPod(uid, corev1.RestartPolicyAlways, "web")
	p.Name = string(uid)
	p.Spec.Volumes = []corev1.Volume{
		{Name: "content", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &typ}}},
	}
	p.Spec.Containers[0].VolumeMounts = mounts
	return p
}

// TestVolumes: a container gets its volumes' bind mounts, the pod's
// emptyDir lives at kubelet's layout until the pod is removed; a volume
// that cannot be set up keeps the pod ContainerCreating with kubelet's
// FailedMount event until it can; a bad subPath is kubelet's
// CreateContainerConfigError.
func TestVolumes(t *testing.T) {
	podsDir := t.TempDir()
	hostDir := t.TempDir()
	missing := filepath.Join(hostDir, "later")
	mounts := []corev1.VolumeMount{
		{Name: "content", MountPath: "/usr/share/nginx/html", ReadOnly: true},
		{Name: "host", MountPath: "/data"},
	}
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		e.m.cfg.PodsDir = podsDir
		good := volumePod("good", hostDir, corev1.HostPathDirectory, mounts...)
		bad := volumePod("bad", missing, corev1.HostPathDirectory, mounts...)
		subPath := volumePod("subpath", hostDir, corev1.HostPathUnset, corev1.VolumeMount{Name: "host", MountPath: "/c", SubPath: "/etc"})
		e.m.SetDesired([]*corev1.Pod{good, bad, subPath})
		e.run()
		defer e.stop()

		emptyDir := filepath.Join(podsDir, "good", "volumes", "kubernetes.io~empty-dir", "content")
		want := []runtime.Mount{
			{HostPath: emptyDir, ContainerPath: "/usr/share/nginx/html", ReadOnly: true},
			{HostPath: hostDir, ContainerPath: "/data"},
		}
		if diff := cmp.Diff(want, containerMounts(t, rt, "good", "web")); diff != "" {
			t.Errorf("good's web mounts (-want +got):\n%s", diff)
		}
		if fi, err := os.Stat(emptyDir); err != nil || fi.Mode() != os.ModeDir|0o777 {
			t.Errorf("emptyDir %s: %v %v, want a directory 0777", emptyDir, fi, err)
		}
		if got := containerState(e.status("good"), "web"); got != "running restarts=0" {
			t.Errorf("good's web: %s", got)
		}

		st := e.status("bad")
		if st.Phase != corev1.PodPending || containerState(st, "web") != "waiting ContainerCreating restarts=0" {
			t.Errorf("bad: phase %s, web %s; want Pending, waiting ContainerCreating", st.Phase, containerState(st, "web"))
		}
		if _, ok := rt.SandboxConfig("bad"); ok {
			t.Error("bad got a sandbox before its volumes were set up")
		}
		failedMount := `bad Warning FailedMount : MountVolume.SetUp failed for volume "host" : hostPath ` + missing + ` doesn't exist`
		configErr := "subpath Warning Failed spec.containers{web}: Error: error SubPath `/etc` must not be an absolute path"
		events := e.rec.take()
		for _, ev := range []string{failedMount, configErr} {
			if !slices.Contains(events, ev) {
				t.Errorf("no event %q in:\n%s", ev, events)
			}
		}
		if got, want := containerState(e.status("subpath"), "web"), "waiting CreateContainerConfigError: error SubPath `/etc` must not be an absolute path restarts=0"; got != want {
			t.Errorf("subpath's web: %s, want %s", got, want)
		}

		// The directory appears: the retry mounts it.
		if err := os.Mkdir(missing, 0o755); err != nil {
			t.Fatal(err)
		}
		advance(syncErrorRetry)
		if got := containerState(e.status("bad"), "web"); got != "running restarts=0" {
			t.Errorf("bad's web after its hostPath appeared: %s", got)
		}

		// Removed pods take their directories, not their hostPaths.
		e.m.SetDesired(nil)
		advance(time.Minute)
		for _, uid := range []string{"good", "bad", "subpath"} {
			if _, err := os.Stat(filepath.Join(podsDir, uid)); !os.IsNotExist(err) {
				t.Errorf("pod directory of %s after removal: %v, want it gone", uid, err)
			}
		}
		if _, err := os.Stat(missing); err != nil {
			t.Errorf("hostPath after removal: %v", err)
		}
	})
}

func containerMounts(t *testing.T, rt *fake.Runtime, uid types.UID, name string) []runtime.Mount {
	t.Helper()
	list, err := rt.ListContainers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Pod.UID == uid && c.Name == name {
			cfg, _ := rt.Config(c.ID)
			return cfg.Mounts
		}
	}
	t.Fatalf("no container %s in pod %s", name, uid)
	return nil
}
