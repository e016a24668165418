package soak

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/podboot/podboot/bench/podbench"
)

// IO is what processes wrote over a window, from /proc/PID/io: WChar is
// every byte passed to write(2) and friends, whatever the file (a tmpfs,
// a pipe, a socket); WriteBytes is what they caused to be sent to a block
// device (page cache dirtied on a disk filesystem; 0 on tmpfs); SyscW is
// the number of write calls.
type IO struct {
	WChar, WriteBytes, SyscW uint64
}

func (a IO) sub(b IO) IO {
	return IO{WChar: a.WChar - b.WChar, WriteBytes: a.WriteBytes - b.WriteBytes, SyscW: a.SyscW - b.SyscW}
}

// WritesReport is the state directory's writes of a node at rest.
type WritesReport struct {
	Pods   int
	Window time.Duration
	// ByRole sums the agent's, containerd's and the shims' writes over
	// the window (the shims present at both ends).
	ByRole map[podbench.Role]IO
}

// PerHour scales an amount over the window to an hour.
func (r WritesReport) PerHour(v uint64) float64 {
	return float64(v) * float64(time.Hour) / float64(r.Window)
}

// MeasureWrites runs a node with pods steady pods and its state on Work's
// filesystem (a disk, so that WriteBytes means something), waits for the
// pods and then settle, and reads what the node's processes wrote over
// window. Nothing is done to the node in the window.
func MeasureWrites(ctx context.Context, c Config, pods int, settle, window time.Duration) (WritesReport, error) {
	c.StateOnDisk = true
	rep := WritesReport{Pods: pods, Window: window}
	specs := Mix{Steady: pods}.Pods()
	n, err := startNode(ctx, c, specs)
	if err != nil {
		return rep, err
	}
	runErr := func() error {
		if err := n.waitStarted(ctx, specs, c.StartTimeout); err != nil {
			return err
		}
		c.Log.Info("pods running; settling", "settle", settle)
		if err := sleep(ctx, settle); err != nil {
			return err
		}
		before, err := n.io()
		if err != nil {
			return err
		}
		c.Log.Info("measuring writes at rest", "window", window)
		if err := sleep(ctx, window); err != nil {
			return err
		}
		after, err := n.io()
		if err != nil {
			return err
		}
		rep.ByRole = map[podbench.Role]IO{}
		for pid, a := range after {
			if b, ok := before[pid]; ok {
				rep.ByRole[a.role] = add(rep.ByRole[a.role], a.io.sub(b.io))
			}
		}
		return nil
	}()
	return rep, errors.Join(runErr, n.stop(runErr != nil))
}

func add(a, b IO) IO {
	return IO{WChar: a.WChar + b.WChar, WriteBytes: a.WriteBytes + b.WriteBytes, SyscW: a.SyscW + b.SyscW}
}

type roleIO struct {
	role podbench.Role
	io   IO
}

// io reads /proc/PID/io of every process of the node, by PID.
func (n *node) io() (map[int]roleIO, error) {
	procs, err := n.prober.Node.Processes()
	if err != nil {
		return nil, err
	}
	out := map[int]roleIO{}
	for _, p := range procs {
		proc, err := n.prober.Proc.Proc(p.PID)
		if err != nil {
			continue // exited
		}
		pio, err := proc.IO()
		if err != nil {
			return nil, fmt.Errorf("read /proc/%d/io (%s): %w", p.PID, p.Role, err)
		}
		out[p.PID] = roleIO{role: p.Role, io: IO{WChar: pio.WChar, WriteBytes: pio.WriteBytes, SyscW: pio.SyscW}}
	}
	return out, nil
}
