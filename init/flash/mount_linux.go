package flash

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/init/mounts"
)

// MountExt4 mounts dev at dir. noatime: with relatime, the first read of
// a file after it was written rewrites its inode, so an agent that only
// reads the flash at boot would still write it (measured on a loop device:
// 30 sectors against 14 with noatime for a start that reads the API
// credentials). Nothing on the board uses access times.
func MountExt4(dev, dir string) (mounts.Mount, error) {
	m := ext4Mount(dev, dir)
	if err := mountPoint(dir); err != nil {
		return m, err
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		return m, fmt.Errorf("%s: %w", m, err)
	}
	return m, nil
}

func ext4Mount(dev, dir string) mounts.Mount {
	return mounts.Mount{Source: dev, Target: dir, FSType: "ext4", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME}
}

// MountEmpty mounts a tmpfs at dir: without a flash the board still boots
// and answers, with nothing to run.
func MountEmpty(dir string) (mounts.Mount, error) {
	m := mounts.Mount{Source: "tmpfs", Target: dir, FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"}
	if err := mountPoint(dir); err != nil {
		return m, err
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		return m, fmt.Errorf("%s: %w", m, err)
	}
	return m, nil
}

// Unmount unmounts dir after a sync. When something still holds it open
// it is remounted read-only, which also leaves ext4 clean, and detached.
// It returns how it went: "unmounted", "remounted read-only" or "detached".
func Unmount(dir string) (string, error) {
	unix.Sync()
	err := unix.Unmount(dir, 0)
	if err == nil {
		return "unmounted", nil
	}
	if !errors.Is(err, unix.EBUSY) {
		return "", fmt.Errorf("umount %s: %w", dir, err)
	}
	if rerr := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr == nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return "remounted read-only", nil
	} else {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return "detached", fmt.Errorf("umount %s: %w; mount -o remount,ro %s: %w", dir, err, dir, rerr)
	}
}
