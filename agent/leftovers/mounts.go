package leftovers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// UnmountUnder unmounts every mount strictly under dir, deepest first, and
// returns the mount points it unmounted. A mount the kernel calls busy is
// detached (MNT_DETACH): nothing may use it any more, and a lazy unmount
// still frees it once the last user is gone.
func UnmountUnder(dir string) ([]string, error) {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved // mountinfo has resolved paths
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("list mounts under %q: %w", dir, err)
	}
	var points []string
	for _, m := range mounts {
		if m.Mountpoint != dir {
			points = append(points, m.Mountpoint)
		}
	}
	// Deepest first; a mount point mounted twice is listed twice.
	slices.SortStableFunc(points, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var done []string
	var errs []error
	for _, mp := range points {
		err := unix.Unmount(mp, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(mp, unix.MNT_DETACH)
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			continue // already gone with its parent
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("unmount %q: %w", mp, err))
			continue
		}
		done = append(done, mp)
	}
	return done, errors.Join(errs...)
}

// removeUnmounted unmounts what is under dir, then removes dir, unless a
// mount is still there: RemoveAll never deletes through a mount into the
// files of whatever is mounted.
func removeUnmounted(dir string) ([]string, error) {
	unmounted, err := UnmountUnder(dir)
	if err != nil {
		return unmounted, fmt.Errorf("remove %q: %w", dir, err)
	}
	resolved := dir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		resolved = r
	}
	left, err := mountinfo.GetMounts(mountinfo.PrefixFilter(resolved))
	if err != nil {
		return unmounted, fmt.Errorf("remove %q: list mounts: %w", dir, err)
	}
	if len(left) > 0 {
		return unmounted, fmt.Errorf("remove %q: %q is still mounted", dir, left[0].Mountpoint)
	}
	if err := os.RemoveAll(dir); err != nil {
		return unmounted, fmt.Errorf("remove %q: %w", dir, err)
	}
	return unmounted, nil
}
