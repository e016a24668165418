package usbstick

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSysfsDevices lists a fake sysfs laid out as the kernel lays it
// out: /sys/class/block/<name> are symlinks into the device tree, where a
// partition is a directory inside its disk's.
func TestSysfsDevices(t *testing.T) {
	root := t.TempDir()
	attrs := func(dir string, kv map[string]string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join(root, dir, k), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	usb := "devices/platform/xhci/usb1/1-1/host0/target0:0:0/0:0:0:0/block"
	attrs("devices/virtio0/block/vda", map[string]string{"size": "2097152", "dev": "254:0", "diskseq": "1", "removable": "0"})
	attrs(usb+"/sda", map[string]string{"size": "65536", "dev": "8:0", "diskseq": "7", "removable": "1"})
	attrs(usb+"/sda/sda1", map[string]string{"size": "63488", "dev": "8:1", "partition": "1"})
	attrs(usb+"/sdb", map[string]string{"size": "0", "dev": "8:16", "diskseq": "8", "removable": "1"}) // an empty card slot
	attrs("devices/virtual/block/loop0", map[string]string{"size": "0", "dev": "7:0", "diskseq": "2", "removable": "0"})
	class := filepath.Join(root, "class/block")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"vda": "devices/virtio0/block/vda", "sda": usb + "/sda", "sda1": usb + "/sda/sda1",
		"sdb": usb + "/sdb", "loop0": "devices/virtual/block/loop0",
	} {
		if err := os.Symlink(filepath.Join("../..", target), filepath.Join(class, name)); err != nil {
			t.Fatal(err)
		}
	}
	devDir := filepath.Join(root, "dev")
	got, err := Sysfs{Class: class, Dev: devDir}.Devices()
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{Name: "sda", Path: devDir + "/sda", Dev: "8:0", Seq: "7", Sectors: 65536},
		{Name: "sda1", Path: devDir + "/sda1", Dev: "8:1", Seq: "7", Sectors: 63488},
		{Name: "vda", Path: devDir + "/vda", Dev: "254:0", Seq: "1", Sectors: 2097152},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Devices (-want +got):\n%s", diff)
	}
}
