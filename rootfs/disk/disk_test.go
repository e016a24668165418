package disk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/testenv"
)

func TestNewLayout(t *testing.T) {
	l, err := NewLayout("dos", "rpi4", KindFAT32, 256*MiB, 600*MiB+1)
	if err != nil {
		t.Fatal(err)
	}
	want := "label: dos\nlabel-id: 0x" + VolumeID("rpi4", "disk") + "\nunit: sectors\n\n" +
		"start=2048, size=524288, type=c, bootable\n" +
		"start=526336, size=1230848, type=83\n"
	if diff := cmp.Diff(want, l.SfdiskScript()); diff != "" {
		t.Errorf("dos script (-want +got):\n%s", diff)
	}
	if got, want := l.Size, int64((1+256+601+1)*MiB); got != want {
		t.Errorf("size %d, want %d", got, want)
	}

	g, err := NewLayout("gpt", "qemu-arm64", "", 0, 64*MiB)
	if err != nil {
		t.Fatal(err)
	}
	want = "label: gpt\nlabel-id: " + ID("qemu-arm64", "disk") + "\nunit: sectors\nfirst-lba: 2048\n\n" +
		"start=2048, size=131072, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=" + strings.ToUpper(ID("qemu-arm64", "flash")) + ", name=\"PODBOOT\"\n"
	if diff := cmp.Diff(want, g.SfdiskScript()); diff != "" {
		t.Errorf("gpt script (-want +got):\n%s", diff)
	}
	if _, ok := g.Boot(); ok {
		t.Error("Boot() found a boot partition in a flash-only layout")
	}
	for _, bad := range []struct {
		table string
		flash int64
	}{{"mbr", MiB}, {"gpt", 0}} {
		if _, err := NewLayout(bad.table, "x", "", 0, bad.flash); err == nil {
			t.Errorf("NewLayout(%s, flash %d) succeeded", bad.table, bad.flash)
		}
	}
}

func TestIDs(t *testing.T) {
	if ID("a", "disk") != ID("a", "disk") || ID("a", "disk") == ID("b", "disk") || ID("a", "disk") == ID("a", "flash") {
		t.Error("ID is not a stable function of seed and what")
	}
	if id := ID("a", "disk"); len(id) != 36 || id[14] != '4' {
		t.Errorf("ID %q is not a version 4 UUID layout", id)
	}
}

func needTools(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "needs %s (apt-get install fdisk e2fsprogs dosfstools mtools)", tool)
		}
	}
}

func output(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeImage builds a dos image with a FAT boot partition and the flash.
func writeImage(t *testing.T, dir string) (string, Layout) {
	t.Helper()
	ctx := context.Background()
	epoch := time.Unix(1700000000, 0)
	boot, flash := filepath.Join(dir, "boot"), filepath.Join(dir, "flash")
	for p, data := range map[string]string{
		"boot/config.txt":            "arm_64bit=1\n",
		"boot/overlays/x.dtbo":       "dtbo",
		"flash/pods/web.yaml":        "kind: Pod\n",
		"flash/images/busybox.tar":   "tar",
		"flash/api/token":            "secret\n",
		"flash/.podboot/placeholder": "",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := NewLayout("dos", "test", KindFAT32, 64*MiB, 32*MiB)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.img")
	if err := Create(ctx, img, l); err != nil {
		t.Fatal(err)
	}
	bp, _ := l.Boot()
	if err := MkFAT(ctx, img, bp, FAT{Label: "BOOT", VolumeID: VolumeID("test", "boot"), Src: boot, Epoch: epoch}); err != nil {
		t.Fatal(err)
	}
	if err := MkExt4(ctx, img, l.Flash(), Ext4{Label: "PODBOOT", UUID: ID("test", "fs"), HashSeed: ID("test", "hash"), Src: flash, Epoch: epoch}); err != nil {
		t.Fatal(err)
	}
	return img, l
}

func TestIntegrationImage(t *testing.T) {
	needTools(t, "sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy", "mmd", "mdir", "mtype", "debugfs", "dumpe2fs", "e2fsck")
	dir := t.TempDir()
	img, l := writeImage(t, dir)

	var table struct {
		PartitionTable struct {
			Label      string
			Partitions []struct {
				Start, Size int64
				Type        string
				Bootable    bool
			}
		}
	}
	if err := json.Unmarshal([]byte(output(t, "sfdisk", "--json", img)), &table); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(table.PartitionTable.Label)
	for _, p := range table.PartitionTable.Partitions {
		got += fmt.Sprintf(" %d+%d:%s:%v", p.Start, p.Size, p.Type, p.Bootable)
	}
	if want := "dos 2048+131072:c:true 133120+65536:83:false"; got != want {
		t.Errorf("partition table %q, want %q", got, want)
	}

	bp, _ := l.Boot()
	fat := fmt.Sprintf("%s@@%d", img, bp.Start)
	if got := output(t, "mtype", "-i", fat, "::/config.txt"); got != "arm_64bit=1\n" {
		t.Errorf("config.txt on FAT = %q", got)
	}
	if got := output(t, "mdir", "-b", "-i", fat, "::/overlays"); !strings.Contains(got, "x.dtbo") {
		t.Errorf("mdir overlays = %q", got)
	}

	ext := fmt.Sprintf("%s?offset=%d", img, l.Flash().Start)
	if got := output(t, "dumpe2fs", "-h", ext); !strings.Contains(got, "Filesystem volume name:   PODBOOT") {
		t.Errorf("dumpe2fs: no PODBOOT label:\n%s", got)
	}
	if got := output(t, "debugfs", "-R", "cat /pods/web.yaml", ext); !strings.Contains(got, "kind: Pod") {
		t.Errorf("debugfs cat /pods/web.yaml = %q", got)
	}

	// The inode tables are zeroed here, not by the board's first mount
	// (ext4lazyinit: 20 MiB written to the card at its first boot).
	groups := regexp.MustCompile(`(?m)^Group \d+: .*$`).FindAllString(output(t, "dumpe2fs", ext), -1)
	if n, z := len(groups), strings.Count(strings.Join(groups, "\n"), "ITABLE_ZEROED"); n == 0 || z != n {
		t.Errorf("dumpe2fs: %d of %d block groups have ITABLE_ZEROED, want all", z, n)
	}

	output(t, "e2fsck", "-fn", ext) // exits non-zero on any inconsistency

	// Every file's times are the epoch (1700000000 = 0x6553f100), ctime and
	// atime too: mke2fs copies those from the source tree, where they are
	// the build's time (two builds a second apart differed).
	for _, p := range []string{"/", "/pods", "/pods/web.yaml", "/.podboot", "/.podboot/placeholder", "/api/token"} {
		stat := output(t, "debugfs", "-R", "stat "+p, ext)
		for _, field := range []string{"ctime", "atime", "mtime"} {
			if !strings.Contains(stat, field+": 0x6553f100:") {
				t.Errorf("debugfs stat %s: %s is not the epoch:\n%s", p, field, stat)
			}
		}
	}

	// The same inputs give the same bytes.
	img2, _ := writeImage(t, t.TempDir())
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(img2)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same image differ")
	}
}

// TestIntegrationFATSizes writes the boot partitions of the boards (ESP
// 128 MiB, Pi 256 MiB) and others: each must take files with long names.
// 256 MiB at mkfs.fat's default 4 KiB clusters sits just under FAT32's
// minimum cluster count, which mtools then misreads as FAT16.
func TestIntegrationFATSizes(t *testing.T) {
	needTools(t, "sfdisk", "mkfs.vfat", "mcopy", "mmd", "mtype")
	ctx := t.Context()
	for _, mib := range []int64{64, 128, 256, 512, 1024} {
		dir := t.TempDir()
		src := filepath.Join(dir, "boot")
		os.MkdirAll(src, 0o755)
		if err := os.WriteFile(filepath.Join(src, "bcm2711-rpi-4-b.dtb"), []byte("dtb"), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := NewLayout("dos", "sizes", KindFAT32, mib*MiB, 8*MiB)
		if err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "disk.img")
		if err := Create(ctx, img, l); err != nil {
			t.Fatal(err)
		}
		bp, _ := l.Boot()
		if err := MkFAT(ctx, img, bp, FAT{Label: "BOOT", VolumeID: VolumeID("sizes", "boot"), Src: src, Epoch: time.Unix(1700000000, 0)}); err != nil {
			t.Errorf("%d MiB: %v", mib, err)
			continue
		}
		if got := output(t, "mtype", "-i", fmt.Sprintf("%s@@%d", img, bp.Start), "::/bcm2711-rpi-4-b.dtb"); got != "dtb" {
			t.Errorf("%d MiB: file on FAT = %q", mib, got)
		}
	}
}
