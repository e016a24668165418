package leftovers

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/internal/integration"
)

// mountTmpfs mounts a tmpfs on target until the test ends.
func mountTmpfs(t *testing.T, target string) {
	t.Helper()
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", target, err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
}

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	left, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range left {
		out = append(out, m.Mountpoint)
	}
	return out
}

func TestUnmountUnder(t *testing.T) {
	integration.RequireRoot(t)
	state := t.TempDir()
	for _, d := range []string{"netns", "rootfs/a"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mountTmpfs(t, filepath.Join(state, "rootfs/a"))
	if err := os.MkdirAll(filepath.Join(state, "rootfs/a/nested"), 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, filepath.Join(state, "rootfs/a/nested"))
	mountTmpfs(t, filepath.Join(state, "netns"))
	mountTmpfs(t, filepath.Join(state, "netns")) // stacked
	done, err := UnmountUnder(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 4 {
		t.Errorf("unmounted %v, want the 4 mounts", done)
	}
	for _, m := range mountsUnder(t, state) {
		t.Errorf("mount left under the state dir: %s", m)
	}
}

// A dead pod's directory goes with its mounts; one whose mount cannot be
// taken off is not removed, so nothing is deleted through a mount.
func TestRemoveUnmounted(t *testing.T) {
	integration.RequireRoot(t)
	state := t.TempDir()
	vol := filepath.Join(state, "kubelet/pods/dead/volumes/kubernetes.io~empty-dir/mem")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, vol)
	if err := os.WriteFile(filepath.Join(vol, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmounted, err := removeUnmounted(filepath.Join(state, "kubelet/pods/dead"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{vol}, unmounted); diff != "" {
		t.Errorf("unmounted (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(state, "kubelet/pods/dead")); !os.IsNotExist(err) {
		t.Errorf("pod directory left: %v", err)
	}

	// The pod directory is itself a mount point: it is never removed.
	busy := filepath.Join(state, "kubelet/pods/busy")
	if err := os.MkdirAll(busy, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, busy)
	if err := os.WriteFile(filepath.Join(busy, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := removeUnmounted(busy); err == nil {
		t.Error("removeUnmounted through a mount: no error")
	}
	if _, err := os.Stat(filepath.Join(busy, "data")); err != nil {
		t.Errorf("a file in a mount was deleted: %v", err)
	}
}
