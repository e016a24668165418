package podbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/internal/nsutil"
)

// Devnode is a running bin/devnode: a private containerd and a podagent.
type Devnode struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // its exit, valid after done
}

// DevnodeConfig says how to start a devnode.
type DevnodeConfig struct {
	Bin, Flash, State, Listen string
	// NetNS, if set, is the pinned network namespace devnode runs in
	// (under nsenter, which execs it: signals still reach devnode).
	NetNS string
	// CNIBinDir is devnode's --cni-bin-dir: the pod network on.
	CNIBinDir string
	// Log receives devnode's stderr and every stdout line.
	Log io.Writer
}

// StartDevnode starts devnode and waits until it prints "ready" (the API
// answers), it exits, or ctx ends; in the last two cases it is stopped and
// the error says why.
func StartDevnode(ctx context.Context, c DevnodeConfig) (*Devnode, error) {
	cmd := devnodeCommand(c)
	// Its own process group, so a last-resort kill reaches everything it
	// started; and a power-off if this program dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Stderr = c.Log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start devnode: %w", err)
	}
	// Started from a thread kept until devnode exits: Pdeathsig follows
	// the forking thread, and -pod-network's nsutil.Do discards threads.
	release, err := nsutil.StartOnKeptThread(cmd)
	if err != nil {
		return nil, fmt.Errorf("start devnode %s: %w", c.Bin, err)
	}
	d := &Devnode{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			fmt.Fprintln(c.Log, sc.Text())
			if !signalled && strings.TrimSpace(sc.Text()) == "ready" {
				close(ready)
				signalled = true
			}
		}
		d.err = cmd.Wait()
		release()
		close(d.done)
	}()
	select {
	case <-ready:
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("start devnode: exited before ready: %v", d.err)
	case <-ctx.Done():
		stopErr := d.Stop(30 * time.Second)
		return nil, errors.Join(fmt.Errorf("start devnode: not ready: %w", context.Cause(ctx)), stopErr)
	}
}

// devnodeCommand is devnode's command line for c.
func devnodeCommand(c DevnodeConfig) *exec.Cmd {
	args := []string{"--flash", c.Flash, "--state", c.State, "--listen", c.Listen}
	if c.CNIBinDir != "" {
		args = append(args, "--cni-bin-dir", c.CNIBinDir)
	}
	if c.NetNS != "" {
		return exec.Command("nsenter", append([]string{"--net=" + c.NetNS, c.Bin}, args...)...)
	}
	return exec.Command(c.Bin, args...)
}

// PID is devnode's process ID.
func (d *Devnode) PID() int { return d.cmd.Process.Pid }

// Stop powers the node off with SIGTERM and waits up to grace for it to
// exit; past that it kills devnode's process group and says so.
func (d *Devnode) Stop(grace time.Duration) error {
	select {
	case <-d.done:
		return d.exitErr()
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop devnode (pid %d): %w", d.PID(), err)
	}
	select {
	case <-d.done:
		return d.exitErr()
	case <-time.After(grace):
	}
	syscall.Kill(-d.PID(), syscall.SIGKILL)
	<-d.done
	return fmt.Errorf("stop devnode (pid %d): still running %s after SIGTERM, killed its process group", d.PID(), grace)
}

// PowerOff stops the node within grace and sweeps what it left behind.
// devnode bounds its own power-off (the agent's 5 minutes to stop pods,
// and a margin); a run that already failed has likely left the agent
// stuck, so it gets at most a minute before the sweep.
func (d *Devnode) PowerOff(node Node, grace time.Duration, failed bool, runc string, log *slog.Logger) error {
	if failed {
		grace = min(grace, time.Minute)
	}
	log.Info("powering devnode off", "timeout", grace)
	stopErr := d.Stop(grace)
	if procs, perr := node.Processes(); stopErr != nil || perr != nil || len(procs) > 0 {
		did, sweepErr := node.Sweep(runc)
		stopErr = errors.Join(stopErr, perr, sweepErr)
		if did != "" {
			stopErr = errors.Join(stopErr, fmt.Errorf("devnode left things behind, swept: %s", did))
		}
	}
	return stopErr
}

func (d *Devnode) exitErr() error {
	if d.err != nil {
		return fmt.Errorf("devnode (pid %d) exit: %w", d.PID(), d.err)
	}
	return nil
}
