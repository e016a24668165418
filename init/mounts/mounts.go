// Package mounts is PID 1's mount table as values (u-root libinit's way),
// so that the table is tested without a kernel and a failed boot prints
// what it tried as the shell commands a person would type.
package mounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call.
type Mount struct {
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	// Optional mounts may fail (debugfs on a kernel without it).
	Optional bool
	// Mode is the target directory's mode when it has to be created.
	Mode os.FileMode
}

// flagNames are the mount(8) option names of the flags used here, in the
// order String prints them.
var flagNames = []struct {
	flag uintptr
	name string
}{
	{unix.MS_RDONLY, "ro"},
	{unix.MS_NOSUID, "nosuid"},
	{unix.MS_NODEV, "nodev"},
	{unix.MS_NOEXEC, "noexec"},
	{unix.MS_RELATIME, "relatime"},
	{unix.MS_NOATIME, "noatime"},
	{unix.MS_REMOUNT, "remount"},
	{unix.MS_BIND, "bind"},
}

// Options returns the flags and data as mount(8)'s -o list.
func (m Mount) Options() string {
	var opts []string
	left := m.Flags
	for _, f := range flagNames {
		if m.Flags&f.flag != 0 {
			opts = append(opts, f.name)
			left &^= f.flag
		}
	}
	if left != 0 {
		opts = append(opts, fmt.Sprintf("flags=%#x", left))
	}
	if m.Data != "" {
		opts = append(opts, m.Data)
	}
	return strings.Join(opts, ",")
}

// String is the shell command that does the same mount.
func (m Mount) String() string {
	var b strings.Builder
	b.WriteString("mount")
	if m.FSType != "" {
		b.WriteString(" -t " + m.FSType)
	}
	if o := m.Options(); o != "" {
		b.WriteString(" -o " + o)
	}
	b.WriteString(" " + m.Source + " " + m.Target)
	return b.String()
}

// Mounter does the system calls; a seam for tests.
type Mounter interface {
	MkdirAll(path string, mode os.FileMode) error
	Mount(source, target, fstype string, flags uintptr, data string) error
}

// System is the real Mounter.
type System struct{}

func (System) MkdirAll(path string, mode os.FileMode) error { return os.MkdirAll(path, mode) }
func (System) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Do creates the target directory and mounts.
func (m Mount) Do(sys Mounter) error {
	mode := m.Mode
	if mode == 0 {
		mode = 0o755
	}
	if err := sys.MkdirAll(m.Target, mode); err != nil {
		return fmt.Errorf("%s: create mount point: %w", m, err)
	}
	if err := sys.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		return fmt.Errorf("%s: %w", m, err)
	}
	return nil
}

const (
	nosuidNodev  = unix.MS_NOSUID | unix.MS_NODEV
	nosuidNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

// Table is the board's mount table, in order. The kernel does not mount
// devtmpfs itself (DEVTMPFS_MOUNT is not set in Debian's arm64 kernel).
// cgroup2 is the only cgroup hierarchy: a v1 hierarchy would take its
// controllers away from the unified tree (u-root's own init mounts v1).
// /var is a tmpfs because the initramfs root cannot hold containerd's
// overlay snapshots; the flash is mounted later, once it is found.
func Table() []Mount {
	return []Mount{
		{Source: "proc", Target: "/proc", FSType: "proc", Flags: nosuidNoexec, Mode: 0o555},
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: nosuidNoexec, Mode: 0o555},
		{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=0620,ptmxmode=0666"},
		{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: nosuidNodev, Data: "mode=1777"},
		{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: nosuidNodev, Data: "mode=0755"},
		{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: nosuidNodev, Data: "mode=1777"},
		{Source: "tmpfs", Target: "/var", FSType: "tmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		{Source: "cgroup2", Target: "/sys/fs/cgroup", FSType: "cgroup2", Flags: nosuidNoexec, Data: "nsdelegate"},
		{Source: "debugfs", Target: "/sys/kernel/debug", FSType: "debugfs", Flags: nosuidNoexec, Optional: true},
	}
}

// Script renders mounts as a shell script, one command a line.
func Script(ms []Mount) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.String())
		if m.Optional {
			b.WriteString(" || true")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// MountAll mounts the table in order. A required mount that fails is
// returned at the end, after the others were tried, so one failure does
// not hide the next; an optional one is only reported through warn.
func MountAll(sys Mounter, ms []Mount, warn func(m Mount, err error)) error {
	var errs []error
	for _, m := range ms {
		if err := m.Do(sys); err != nil {
			if m.Optional {
				warn(m, err)
				continue
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// EnableControllers writes every controller listed in the cgroup root's
// cgroup.controllers into its cgroup.subtree_control, so that containers
// below get cpu, memory, pids and the rest. It returns the controllers
// enabled.
func EnableControllers(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup controllers: %w", err)
	}
	ctrls := strings.Fields(string(b))
	if len(ctrls) == 0 {
		return nil, nil
	}
	path := filepath.Join(root, "cgroup.subtree_control")
	if err := os.WriteFile(path, []byte(SubtreeControl(ctrls)), 0); err != nil {
		return nil, fmt.Errorf("enable cgroup controllers %v in %s: %w", ctrls, path, err)
	}
	return ctrls, nil
}

// SubtreeControl is what enables ctrls: "+cpu +memory ...".
func SubtreeControl(ctrls []string) string {
	parts := make([]string, len(ctrls))
	for i, c := range ctrls {
		parts[i] = "+" + c
	}
	return strings.Join(parts, " ")
}

// LeaveRootfs puts a bind mount of the initramfs over / and chroots into
// it: switch_root without copying anything. pivot_root(2) refuses to run
// while the caller's root is the initial rootfs (EINVAL: it has no parent
// mount), and runc pivot_roots into every container; below the bind mount
// it works. PID 1 does this first, before any other mount. It does nothing
// when / is already a mount with a parent (booted from a disk, or done).
func LeaveRootfs() (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return false, fmt.Errorf("statfs /: %w", err)
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		return false, nil
	}
	if isMountedRoot() {
		return false, nil
	}
	const dir = "/.rootfs"
	steps := []struct {
		what string
		do   func() error
	}{
		{"mkdir " + dir, func() error { return os.MkdirAll(dir, 0o700) }},
		{"mount --bind / " + dir, func() error { return unix.Mount("/", dir, "", unix.MS_BIND, "") }},
		{"cd " + dir, func() error { return os.Chdir(dir) }},
		{"mount --move . /", func() error { return unix.Mount(".", "/", "", unix.MS_MOVE, "") }},
		{"chroot .", func() error { return unix.Chroot(".") }},
		{"cd /", func() error { return os.Chdir("/") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return false, fmt.Errorf("leave the initramfs root: %s: %w", s.what, err)
		}
	}
	return true, nil
}

// isMountedRoot reports whether / is already a mount below rootfs, from
// /proc/self/mountinfo when /proc is there (it is not, this early in a
// boot: then / is the initramfs).
func isMountedRoot() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == "/" {
			n++
		}
	}
	return n > 0
}
