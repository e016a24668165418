package podbench

import (
	"cmp"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Sweep removes what a node left behind when its power-off failed: it
// kills the node's processes by PID (they are this benchmark's, found by
// the state directory they name), deletes the containers in the node's
// runc roots with runc, and detaches the mounts under the state directory.
// It returns what it did, so the report can say it.
func (n Node) Sweep(runc string) (string, error) {
	var did []string
	var errs []error
	procs, err := n.Processes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range procs {
		// SIGKILL: SIGTERM already went unheeded through devnode.
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err == nil {
			did = append(did, fmt.Sprintf("killed %s (pid %d)", p.Role, p.PID))
		}
	}
	if len(procs) > 0 {
		time.Sleep(500 * time.Millisecond) // let the kernel reap them
	}

	roots, _ := filepath.Glob(filepath.Join(n.StateDir, "containerd", "runc", "*"))
	for _, root := range roots {
		out, err := exec.Command(runc, "--root", root, "list", "-q").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers in runc root %s: %w", root, err))
			continue
		}
		for _, id := range strings.Fields(string(out)) {
			if msg, err := exec.Command(runc, "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("delete container %s: %w: %s", id, err, strings.TrimSpace(string(msg))))
				continue
			}
			did = append(did, "deleted container "+id[:min(12, len(id))])
		}
	}

	mounts, err := procfs.GetMounts()
	if err != nil {
		errs = append(errs, fmt.Errorf("read mounts: %w", err))
	}
	for _, m := range MountsUnder(mounts, n.StateDir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			continue
		}
		did = append(did, "unmounted "+m)
	}
	return strings.Join(did, "; "), errors.Join(errs...)
}

// MountsUnder lists the mount points at or under dir, deepest first so that
// each can be unmounted before the one it sits on; a point with mounts
// stacked on it comes once per mount.
func MountsUnder(mounts []*procfs.MountInfo, dir string) []string {
	var out []string
	for _, m := range mounts {
		if m.MountPoint == dir || strings.HasPrefix(m.MountPoint, dir+"/") {
			out = append(out, m.MountPoint) // twice if stacked: once per unmount
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(strings.Count(b, "/")-strings.Count(a, "/"), strings.Compare(a, b))
	})
	return out
}
