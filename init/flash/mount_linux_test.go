package flash

import "testing"

// The flash is mounted noatime, so reading it writes nothing.
func TestExt4MountIsNoatime(t *testing.T) {
	got := ext4Mount("/dev/vda2", "/flash").String()
	want := "mount -t ext4 -o nosuid,nodev,noatime /dev/vda2 /flash"
	if got != want {
		t.Errorf("flash mount = %q, want %q", got, want)
	}
}
