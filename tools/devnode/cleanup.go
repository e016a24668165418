package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	agentleftovers "github.com/podboot/podboot/agent/leftovers"
	"github.com/podboot/podboot/init/containerd"
)

// cleanUp removes what a node can leave behind after its services
// stopped: shims (and their containers) of this containerd, mounts under
// the state directory, empty container cgroups. Each step runs even when
// an earlier one failed.
func cleanUp(cfg Config, layout containerd.Layout, log *slog.Logger) error {
	errShims := killShims("/proc", layout.Address(), log)
	errMounts := unmountUnder(cfg.StateDir, log)
	errCgroups := removeEmptyCgroups(cfg.CgroupParents, containerIDs(layout.RuncRoot()), log)
	errRoot := removeCgroupRoot(cfg.CgroupRoot, log)
	return errors.Join(errShims, errMounts, errCgroups, errRoot)
}

// removeCgroupRoot removes the node's cgroup root in every hierarchy:
// kubepods, its QoS and pod cgroups and whatever runc left in them, deepest
// first. Once the shims are gone nothing runs there; a cgroup still in use
// is logged and left.
func removeCgroupRoot(root string, log *slog.Logger) error {
	if filepath.Clean("/"+root) == "/" {
		return nil // the host's own root is never ours to remove
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return fmt.Errorf("list cgroup mounts: %w", err)
	}
	var errs []error
	for _, m := range mounts {
		dir := filepath.Join(m.Mountpoint, filepath.Clean("/"+root))
		_, busy, err := removeDirs(dir, true, func(string) bool { return true })
		for _, b := range busy {
			log.Warn("cgroup still in use: left in place", "cgroup", b)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shimName is the binary of the shims containerd starts for runc.
const shimName = "containerd-shim-runc-v2"

// proc is one process as cleanUp sees it.
type proc struct {
	pid, ppid int
	cmdline   []string
}

// listProcs reads pid, parent and command line of every process under
// procRoot; processes that vanish meanwhile are skipped.
func listProcs(procRoot string) ([]proc, error) {
	des, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes in %q: %w", procRoot, err)
	}
	var procs []proc
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(procRoot, de.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(procRoot, de.Name(), "stat"))
		if err != nil {
			continue
		}
		ppid, ok := parentPID(stat)
		if !ok {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(cmd, "\x00")), "\x00")
		procs = append(procs, proc{pid: pid, ppid: ppid, cmdline: args})
	}
	return procs, nil
}

// parentPID reads the 4th field of /proc/PID/stat; the 2nd, the command
// name in parentheses, may itself hold spaces and parentheses.
func parentPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// isShimFor reports whether cmdline is a runc shim started by the
// containerd listening on address: `containerd-shim-runc-v2 -namespace N
// -id ID -address ADDRESS ...`.
func isShimFor(cmdline []string, address string) bool {
	if len(cmdline) == 0 || filepath.Base(cmdline[0]) != shimName {
		return false
	}
	for i, a := range cmdline[:len(cmdline)-1] {
		if (a == "-address" || a == "--address") && cmdline[i+1] == address {
			return true
		}
	}
	return false
}

// leftovers returns the shims of address and their children (the
// containers' init processes, which a shim parents as a subreaper),
// children first: killing a container's init ends its pid namespace, and
// killing a shim before its children would hand them to init.
func leftovers(procs []proc, address string) []proc {
	var shims, out []proc
	for _, p := range procs {
		if isShimFor(p.cmdline, address) {
			shims = append(shims, p)
		}
	}
	for _, s := range shims {
		for _, p := range procs {
			if p.ppid == s.pid {
				out = append(out, p)
			}
		}
	}
	return append(out, shims...)
}

// killShims kills the shims (and their containers) that outlived
// containerd: after a graceful stop there are none.
func killShims(procRoot, address string, log *slog.Logger) error {
	procs, err := listProcs(procRoot)
	if err != nil {
		return err
	}
	left := leftovers(procs, address)
	var errs []error
	for _, p := range left {
		log.Warn("killing leftover process", "pid", p.pid, "cmdline", strings.Join(p.cmdline, " "))
		if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill leftover process %d (%s): %w", p.pid, p.cmdline[0], err))
		}
	}
	// Their mounts and cgroups go only once they are gone.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range left {
		for !gone(procRoot, p.pid) {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("leftover process %d (%s) survived SIGKILL", p.pid, p.cmdline[0]))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// gone reports whether pid has ended (a zombie has).
func gone(procRoot string, pid int) bool {
	stat, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z"))
}

// unmountUnder unmounts every mount strictly under dir, deepest first
// (agent/leftovers, which the agent also collects dead pods' mounts with):
// pinned namespace files, volumes and container rootfs mounts.
func unmountUnder(dir string, log *slog.Logger) error {
	done, err := agentleftovers.UnmountUnder(dir)
	for _, mp := range done {
		log.Info("unmounted leftover mount", "path", mp)
	}
	return err
}

// containerIDs lists the containers runc still keeps state for under
// runcRoot/<namespace>/<id>: the ones that were never deleted.
func containerIDs(runcRoot string) map[string]bool {
	ids := map[string]bool{}
	nss, _ := os.ReadDir(runcRoot)
	for _, ns := range nss {
		des, _ := os.ReadDir(filepath.Join(runcRoot, ns.Name()))
		for _, de := range des {
			if de.IsDir() {
				ids[de.Name()] = true
			}
		}
	}
	return ids
}

// removeEmptyCgroups removes, in every cgroup hierarchy, the empty cgroups
// of this node's containers (named by ids) under each parent, children
// first; cgroups of other containers sharing the parent (another node's,
// being created right now) are not touched. runc deletes a container's cgroup
// when the container is deleted; what is left comes from containers that
// were never deleted (the agent was killed) or from the parents runc
// created for them. A cgroup with processes cannot be removed (EBUSY): it
// belongs to another node sharing the parent, or to a process that
// survived; it is logged, not an error.
func removeEmptyCgroups(parents []string, ids map[string]bool, log *slog.Logger) error {
	if len(ids) == 0 {
		return nil // runc deleted every container, and their cgroups with them
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return fmt.Errorf("list cgroup mounts: %w", err)
	}
	var errs []error
	removed := 0
	for _, m := range mounts {
		for _, parent := range parents {
			n, busy, err := removeEmptyTree(filepath.Join(m.Mountpoint, filepath.Clean("/"+parent)), ids)
			removed += n
			for _, b := range busy {
				log.Warn("cgroup still in use: left in place", "cgroup", b)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if removed > 0 {
		log.Info("removed empty cgroups left by containers", "count", removed, "parents", parents)
	}
	return errors.Join(errs...)
}

// removeEmptyTree removes the directories under dir named by ids, and
// everything below them, deepest first, and returns how many it removed
// and which were in use. Cgroup files cannot be (and need not be)
// removed: rmdir of a cgroup takes them with it.
func removeEmptyTree(dir string, ids map[string]bool) (int, []string, error) {
	return removeDirs(dir, false, func(rel string) bool {
		return slices.ContainsFunc(strings.Split(rel, string(filepath.Separator)), func(s string) bool { return ids[s] })
	})
}

// removeDirs removes, deepest first, the directories under dir whose path
// relative to dir matches (and dir itself when withDir). A missing dir is
// no error; busy (EBUSY, ENOTEMPTY) ones are returned, not failed.
func removeDirs(dir string, withDir bool, match func(rel string) bool) (int, []string, error) {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path == dir {
			if withDir {
				dirs = append(dirs, path)
			}
			return nil
		}
		if rel, _ := filepath.Rel(dir, path); match(rel) {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("walk cgroups under %q: %w", dir, err)
	}
	n := 0
	var busy []string
	var errs []error
	for _, d := range slices.Backward(dirs) {
		err := unix.Rmdir(d)
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
			busy = append(busy, d)
		default:
			errs = append(errs, fmt.Errorf("remove cgroup %q: %w", d, err))
		}
	}
	return n, busy, errors.Join(errs...)
}
