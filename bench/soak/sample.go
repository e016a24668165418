package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/bench/podbench"
)

// Prober reads the series of one node.
type Prober struct {
	Proc procfs.FS
	Node podbench.Node
	// State is the node's state directory (absolute), a tmpfs.
	State string
	// NetNS is the pinned network namespace the node runs in.
	NetNS string
	// API is the agent's base URL; Client reaches it (in NetNS).
	API    string
	Client *http.Client
}

// Sample reads every series once. A series that cannot be read is an
// error: a soak with holes in it proves nothing.
func (p Prober) Sample(ctx context.Context) (map[string]float64, error) {
	procs, err := p.Node.Processes()
	if err != nil {
		return nil, err
	}
	v := map[string]float64{}
	var agents, daemons, shims int
	for _, pr := range procs {
		switch pr.Role {
		case podbench.RoleAgent:
			agents++
			if err := p.process(pr.PID, v, AgentRSS, AgentFDs, AgentThreads, AgentWritten); err != nil {
				return nil, err
			}
		case podbench.RoleContainerd:
			daemons++
			if err := p.process(pr.PID, v, ContainerdRSS, ContainerdFDs, "", DaemonWritten); err != nil {
				return nil, err
			}
		case podbench.RoleShim:
			shims++
		}
	}
	if agents != 1 || daemons != 1 {
		return nil, fmt.Errorf("sample the node in %s: found %d podagent and %d containerd processes, want one each", p.State, agents, daemons)
	}
	v[Shims] = float64(shims)

	if v[AgentGoroutines], err = p.goroutines(ctx); err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p.State, &st); err != nil {
		return nil, fmt.Errorf("statfs the state directory %s: %w", p.State, err)
	}
	v[StateTmpfs] = float64((st.Blocks - st.Bfree) * uint64(st.Bsize))
	logs, files, err := treeSize(filepath.Join(p.State, "pods"))
	if err != nil {
		return nil, err
	}
	v[LogBytes], v[LogFiles] = float64(logs), float64(files)

	mounts, err := p.Proc.GetMounts()
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	v[Mounts] = float64(len(podbench.MountsUnder(mounts, p.State)) - 1) // not the state tmpfs itself
	cg, err := p.cgroups(mounts)
	if err != nil {
		return nil, err
	}
	v[Cgroups] = float64(cg)
	veths, err := p.veths()
	if err != nil {
		return nil, err
	}
	v[Veths] = float64(veths)
	running, restarts, err := p.pods(ctx)
	if err != nil {
		return nil, err
	}
	v[PodsRunning], v[Restarts] = float64(running), float64(restarts)
	return v, nil
}

// process reads one process's RSS, open files, threads (if threads is
// not empty) and bytes written into v.
func (p Prober) process(pid int, v map[string]float64, rss, fds, threads, written string) error {
	proc, err := p.Proc.Proc(pid)
	if err != nil {
		return fmt.Errorf("sample pid %d: %w", pid, err)
	}
	status, err := proc.NewStatus()
	if err != nil {
		return fmt.Errorf("sample pid %d: %w", pid, err)
	}
	v[rss] = float64(status.VmRSS)
	n, err := proc.FileDescriptorsLen()
	if err != nil {
		return fmt.Errorf("sample pid %d: count its fds: %w", pid, err)
	}
	v[fds] = float64(n)
	if threads != "" {
		stat, err := proc.Stat()
		if err != nil {
			return fmt.Errorf("sample pid %d: %w", pid, err)
		}
		v[threads] = float64(stat.NumThreads)
	}
	io, err := proc.IO()
	if err != nil {
		return fmt.Errorf("sample pid %d: %w", pid, err)
	}
	v[written] = float64(io.WChar)
	return nil
}

// goroutines reads go_goroutines from the agent's /metrics (client_golang's
// Go collector).
func (p Prober) goroutines(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.API+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the agent's goroutines: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read the agent's goroutines: GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("read the agent's goroutines: parse /metrics: %w", err)
	}
	f, ok := families["go_goroutines"]
	if !ok || len(f.GetMetric()) != 1 {
		return 0, errors.New("read the agent's goroutines: /metrics has no go_goroutines gauge")
	}
	return f.GetMetric()[0].GetGauge().GetValue(), nil
}

// treeSize is the size and number of the files under dir (0 if it does
// not exist).
func treeSize(dir string) (total int64, files int, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if d.Type().IsRegular() {
			files++
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return total, files, nil
}

// cgroups counts the cgroup directories under the agent's --cgroup-root
// in every cgroup hierarchy mounted here (v1 controllers and v2).
func (p Prober) cgroups(mounts []*procfs.MountInfo) (int, error) {
	root, err := p.cgroupRoot()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range mounts {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		dir := filepath.Join(m.MountPoint, root)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() && path != dir {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("count cgroups under %s: %w", dir, err)
		}
	}
	return n, nil
}

// cgroupRoot is the agent's --cgroup-root, read from its command line:
// devnode picks one per state directory.
func (p Prober) cgroupRoot() (string, error) {
	pid, err := p.Node.Agent()
	if err != nil {
		return "", err
	}
	proc, err := p.Proc.Proc(pid)
	if err != nil {
		return "", fmt.Errorf("read the agent's command line: %w", err)
	}
	args, err := proc.CmdLine()
	if err != nil {
		return "", fmt.Errorf("read the agent's command line: %w", err)
	}
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--cgroup-root="); ok {
			return v, nil
		}
		if a == "--cgroup-root" && i+1 < len(args) {
			return args[i+1], nil
		}
	}
	return "", fmt.Errorf("the agent's command line %q has no --cgroup-root", args)
}

// veths counts the veth links in the node's network namespace.
func (p Prober) veths() (int, error) {
	ns, err := netns.GetFromPath(p.NetNS)
	if err != nil {
		return 0, fmt.Errorf("open network namespace %s: %w", p.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, fmt.Errorf("netlink in %s: %w", p.NetNS, err)
	}
	defer h.Close()
	var links []netlink.Link
	for range 5 { // a dump the kernel interrupts is retried
		if links, err = h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("list links in %s: %w", p.NetNS, err)
	}
	n := 0
	for _, l := range links {
		if l.Type() == "veth" {
			n++
		}
	}
	return n, nil
}

// pods counts the pods in phase Running and their containers' restarts.
func (p Prober) pods(ctx context.Context) (running, restarts int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.API+"/api/v1/pods", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("list pods: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("list pods: %s", resp.Status)
	}
	var list corev1.PodList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return 0, 0, fmt.Errorf("list pods: decode: %w", err)
	}
	for _, pod := range list.Items {
		if pod.Status.Phase == corev1.PodRunning {
			running++
		}
		for _, cs := range pod.Status.ContainerStatuses {
			restarts += int(cs.RestartCount)
		}
	}
	return running, restarts, nil
}

// mountStateTmpfs mounts a tmpfs for the node's state, as on a board, so
// that its use is the RAM the state costs.
func mountStateTmpfs(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("create state directory %s: %w", dir, err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711,size=2g"); err != nil {
		return fmt.Errorf("mount -t tmpfs -o nosuid,nodev,mode=0711,size=2g tmpfs %s: %w", dir, err)
	}
	return nil
}
