package mounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTableScript(t *testing.T) {
	want := `mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
mount -t tmpfs -o nosuid,mode=0755 tmpfs /var
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup
mount -t debugfs -o nosuid,nodev,noexec debugfs /sys/kernel/debug || true
`
	if diff := cmp.Diff(want, Script(Table())); diff != "" {
		t.Errorf("mount table (-want +got):\n%s", diff)
	}
}

func TestNoCgroupV1(t *testing.T) {
	for _, m := range Table() {
		if m.FSType == "cgroup" || strings.HasPrefix(m.Target, "/sys/fs/cgroup/") {
			t.Errorf("cgroup v1 mount %s: it would take controllers from the unified tree", m)
		}
	}
}

func TestMountString(t *testing.T) {
	for _, tc := range []struct {
		m    Mount
		want string
	}{
		{Mount{Source: "/dev/vda1", Target: "/flash", FSType: "ext4"}, "mount -t ext4 /dev/vda1 /flash"},
		{Mount{Source: "/flash", Target: "/flash", Flags: 0x20 | 0x1}, "mount -o ro,remount /flash /flash"},
		{Mount{Source: "x", Target: "/y", Flags: 1 << 30}, "mount -o flags=0x40000000 x /y"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

type fakeMounter struct {
	calls []string
	fail  map[string]error
}

func (f *fakeMounter) MkdirAll(path string, mode os.FileMode) error {
	f.calls = append(f.calls, "mkdir "+path)
	return nil
}

func (f *fakeMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	f.calls = append(f.calls, "mount "+target)
	return f.fail[target]
}

func TestMountAllGoesOnAndReports(t *testing.T) {
	f := &fakeMounter{fail: map[string]error{
		"/sys/kernel/debug": errors.New("no such device"),
		"/dev/pts":          errors.New("permission denied"),
	}}
	var warned []string
	err := MountAll(f, Table(), func(m Mount, err error) { warned = append(warned, err.Error()) })
	if err == nil || err.Error() != "mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts: permission denied" {
		t.Errorf("err = %v, want the devpts failure as a command line", err)
	}
	if diff := cmp.Diff([]string{"mount -t debugfs -o nosuid,nodev,noexec debugfs /sys/kernel/debug: no such device"}, warned); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got, want := len(f.calls), 2*len(Table()); got != want {
		t.Errorf("%d calls, want %d (every mount tried): %v", got, want, f.calls)
	}
}

func TestEnableControllers(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := EnableControllers(root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"cpuset", "cpu", "io", "memory", "pids"}, got); diff != "" {
		t.Errorf("controllers (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
	if string(b) != "+cpuset +cpu +io +memory +pids" {
		t.Errorf("subtree_control = %q", b)
	}
	if _, err := EnableControllers(t.TempDir()); err == nil || !strings.Contains(err.Error(), "cgroup.controllers") {
		t.Errorf("missing cgroup.controllers: err = %v", err)
	}
}
