package volumes

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationMemoryEmptyDir: medium Memory is a tmpfs of the
// sizeLimit at the emptyDir's path; SetUp again keeps it (one mount), and
// Remove unmounts it before deleting the pod directory.
func TestIntegrationMemoryEmptyDir(t *testing.T) {
	testenv.RequireRoot(t)
	podDir := filepath.Join(t.TempDir(), "pod")
	dir := EmptyDirPath(podDir, "cache")
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	pod := podWith(corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("10Mi"))}}})
	for range 2 {
		if err := SetUp(pod, podDir, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("%s is on filesystem type %#x, want tmpfs", dir, st.Type)
	}
	if size := int64(st.Blocks) * st.Bsize; size != 10<<20 {
		t.Errorf("tmpfs size %d, want the sizeLimit %d", size, 10<<20)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Mounted once: unmounting once leaves the plain directory.
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := isMountPoint(dir); mounted {
		t.Errorf("SetUp twice mounted two tmpfs at %s", dir)
	}
	if err := SetUp(pod, podDir, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := Remove(podDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod directory after Remove: %v, want it gone", err)
	}
}
