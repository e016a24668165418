package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes (0: the kernel's default) at dir
// unless one is there already (kubelet's setupTmpfs), with noswap where the
// kernel knows it (Linux 6.4+), as kubelet does when it is supported.
func mountTmpfs(dir string, size int64) error {
	mounted, err := isMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", dir, err)
		}
		if st.Type == unix.TMPFS_MAGIC {
			return nil
		}
	}
	opts := ""
	if size > 0 {
		opts = fmt.Sprintf("size=%d", size)
	}
	withNoswap := "noswap"
	if opts != "" {
		withNoswap = opts + ",noswap"
	}
	err = unix.Mount("tmpfs", dir, "tmpfs", 0, withNoswap)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("tmpfs", dir, "tmpfs", 0, opts)
	}
	if err != nil {
		cmd := "mount -t tmpfs"
		if opts != "" {
			cmd += " -o " + opts
		}
		return fmt.Errorf("%s tmpfs %s: %w", cmd, dir, err)
	}
	return nil
}

func unmount(dir string) error {
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("umount %s: %w", dir, err)
	}
	return nil
}

// isMountPoint is mount-utils' IsLikelyNotMountPoint inverted: dir is on
// another device than its parent. That is enough for the tmpfs mounts made
// here (a bind mount of the same filesystem would not be seen).
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	p := filepath.Dir(dir)
	if err := unix.Lstat(p, &parent); err != nil {
		return false, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return st.Dev != parent.Dev, nil
}
