package podbench

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// Role is the part a process plays in a podboot node.
type Role string

// The processes of a node that the memory figures add up.
const (
	RoleAgent      Role = "podagent"
	RoleContainerd Role = "containerd"
	RoleShim       Role = "containerd-shim-runc-v2"
)

// Process is one process of a node.
type Process struct {
	PID  int
	Role Role
}

// Node finds the processes of one devnode in a /proc tree. Other nodes may
// run on the same host (tests, a developer's `make dev`), so a process
// belongs to this node only if its command line names StateDir, or, for
// the agent, if it descends from DevnodePID.
type Node struct {
	Proc       procfs.FS
	StateDir   string // absolute
	DevnodePID int    // 0 when unknown
}

// Processes lists the node's agent, containerd and shims, ordered by PID.
func (n Node) Processes() ([]Process, error) {
	procs, err := n.Proc.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	parents := make(map[int]int, len(procs))
	type candidate struct {
		pid  int
		args []string
	}
	var candidates []candidate
	for _, p := range procs {
		stat, err := p.Stat()
		if err != nil {
			continue // exited while we looked
		}
		parents[p.PID] = stat.PPID
		args, err := p.CmdLine()
		if err != nil || len(args) == 0 {
			continue // exited, or a kernel thread
		}
		candidates = append(candidates, candidate{p.PID, args})
	}
	var out []Process
	for _, c := range candidates {
		role, ok := roleOf(c.args)
		if !ok {
			continue
		}
		if namesDir(c.args, n.StateDir) || (role == RoleAgent && descends(parents, c.pid, n.DevnodePID)) {
			out = append(out, Process{PID: c.pid, Role: role})
		}
	}
	slices.SortFunc(out, func(a, b Process) int { return a.PID - b.PID })
	return out, nil
}

// roleOf tells a node's processes by their program name.
func roleOf(args []string) (Role, bool) {
	switch filepath.Base(args[0]) {
	case "podagent":
		return RoleAgent, true
	case "containerd":
		return RoleContainerd, true
	case "containerd-shim-runc-v2":
		return RoleShim, true
	}
	return "", false
}

// namesDir reports whether an argument (or the value of a --flag=value
// argument) is dir or a path under it.
func namesDir(args []string, dir string) bool {
	if dir == "" {
		return false
	}
	for _, arg := range args[1:] {
		if _, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "-") {
			arg = v
		}
		if arg == dir || strings.HasPrefix(arg, dir+"/") {
			return true
		}
	}
	return false
}

// descends reports whether pid has ancestor among its parents.
func descends(parents map[int]int, pid, ancestor int) bool {
	if ancestor <= 0 {
		return false
	}
	for seen := 0; pid > 1 && seen < len(parents); seen++ {
		parent, ok := parents[pid]
		if !ok {
			return false
		}
		if parent == ancestor {
			return true
		}
		pid = parent
	}
	return false
}

// Memory is the proportional set size of a node's processes, in bytes.
// PSS splits shared pages (the shims share their binary's text) among the
// processes that map them, so the figures add up to what the node costs.
type Memory struct {
	Agent, Containerd, Shims uint64
	ShimCount                int
	// AgentThreads is the agent's OS thread count: a thread blocked per
	// stream or per pod shows up here before it shows in memory.
	AgentThreads int
}

// Total is the whole stack.
func (m Memory) Total() uint64 { return m.Agent + m.Containerd + m.Shims }

// Memory reads smaps_rollup of every process of the node. It fails if the
// agent or containerd is missing: a figure without them means nothing.
func (n Node) Memory() (Memory, error) {
	procs, err := n.Processes()
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	var agents, daemons int
	for _, p := range procs {
		proc, err := n.Proc.Proc(p.PID)
		if err != nil {
			continue // exited
		}
		rollup, err := proc.ProcSMapsRollup()
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, procfs.ErrFileRead) {
			continue
		}
		if err != nil {
			return Memory{}, fmt.Errorf("read smaps_rollup of %s (pid %d): %w", p.Role, p.PID, err)
		}
		switch p.Role {
		case RoleAgent:
			m.Agent += rollup.Pss
			agents++
			if stat, err := proc.Stat(); err == nil {
				m.AgentThreads = stat.NumThreads
			}
		case RoleContainerd:
			m.Containerd += rollup.Pss
			daemons++
		case RoleShim:
			m.Shims += rollup.Pss
			m.ShimCount++
		}
	}
	if agents != 1 || daemons != 1 {
		return Memory{}, fmt.Errorf("measure memory of the node in %s: found %d podagent and %d containerd processes, want one each", n.StateDir, agents, daemons)
	}
	return m, nil
}

// Agent returns the PID of the node's podagent.
func (n Node) Agent() (int, error) {
	procs, err := n.Processes()
	if err != nil {
		return 0, err
	}
	var pids []int
	for _, p := range procs {
		if p.Role == RoleAgent {
			pids = append(pids, p.PID)
		}
	}
	if len(pids) != 1 {
		return 0, fmt.Errorf("find podagent of the node in %s: found %d (%v), want one", n.StateDir, len(pids), pids)
	}
	return pids[0], nil
}

// CPUTime is the user plus system time pid has used.
func (n Node) CPUTime(pid int) (time.Duration, error) {
	proc, err := n.Proc.Proc(pid)
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	stat, err := proc.Stat()
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	return time.Duration(stat.CPUTime() * float64(time.Second)), nil
}
