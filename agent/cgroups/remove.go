package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// removeTimeout bounds how long RemovePod waits for killed processes to
// leave a cgroup and for the kernel to let go of it.
const removeTimeout = 10 * time.Second

// mount is one cgroup hierarchy's mount point.
type mount struct {
	point       string
	unified     bool     // cgroup2
	controllers []string // v1 superblock options (cpu, memory, name=systemd ...)
}

// cgroupMounts lists the cgroup and cgroup2 mounts of /proc/self/mountinfo,
// each hierarchy once (a hierarchy mounted twice shares its device number).
func cgroupMounts() ([]mount, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: read cgroup mounts: %w", err)
	}
	seen := map[[2]int]bool{}
	var mounts []mount
	for _, in := range infos {
		dev := [2]int{in.Major, in.Minor}
		if seen[dev] || in.Root != "/" {
			continue
		}
		seen[dev] = true
		mounts = append(mounts, mount{
			point:       in.Mountpoint,
			unified:     in.FSType == "cgroup2",
			controllers: strings.Split(in.VFSOptions, ","),
		})
	}
	return mounts, nil
}

// remove kills the processes of the cgroup and its children in every
// hierarchy, then removes the directories, the deepest first.
func (m *Manager) remove(group string) error {
	var dirs []string
	for _, mt := range m.mounts {
		dir := filepath.Join(mt.point, group)
		if _, err := os.Stat(dir); err == nil {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	deadline := time.Now().Add(removeTimeout)
	if err := m.kill(group, dirs, deadline); err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		if err := rmdirTree(dir, deadline); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: remove cgroup %s: %w", group, err))
		}
	}
	return errors.Join(errs...)
}

// kill writes cgroup.kill where the kernel has it (cgroup2, Linux 5.14),
// which also catches processes forking meanwhile, then sends SIGKILL to
// every process listed in the cgroups until none is left, as kubelet's
// tryKillingCgroupProcesses does.
func (m *Manager) kill(group string, dirs []string, deadline time.Time) error {
	for _, dir := range dirs {
		err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
			m.log.Debug("cgroup.kill failed, killing by pid", "cgroup", dir, "err", err)
		}
	}
	delay := 5 * time.Millisecond
	for {
		pids, err := procs(dirs)
		if err != nil {
			return fmt.Errorf("cgroups: list processes of cgroup %s: %w", group, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: processes %v of cgroup %s still run after SIGKILL", pids, group)
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				m.log.Warn("kill process of pod cgroup", "cgroup", group, "pid", pid, "err", err)
			}
		}
		m.log.Debug("killed processes left in pod cgroup", "cgroup", group, "pids", pids)
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// procs reads cgroup.procs of the directories and all below them. A pid
// of 0 (a process of another pid namespace) and this process are left out.
func procs(dirs []string) ([]int, error) {
	self := os.Getpid()
	var pids []int
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed meanwhile
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			f, err := os.Open(filepath.Join(p, "cgroup.procs"))
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			defer f.Close()
			s := bufio.NewScanner(f)
			for s.Scan() {
				pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
				if err != nil || pid <= 0 || pid == self || slices.Contains(pids, pid) {
					continue
				}
				pids = append(pids, pid)
			}
			return s.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	return pids, nil
}

// rmdirTree removes a cgroup directory after its child cgroups (the
// control files go with their directory). The kernel answers EBUSY while
// an exiting task is still charged, so that is retried until deadline.
func rmdirTree(dir string, deadline time.Time) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.IsDir() {
			if err := rmdirTree(filepath.Join(dir, de.Name()), deadline); err != nil {
				return err
			}
		}
	}
	delay := 5 * time.Millisecond
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			return nil
		case !errors.Is(err, unix.EBUSY) || time.Now().After(deadline):
			return &fs.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}
