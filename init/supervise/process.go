package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is one running instance of a service; a seam so that the
// restart timing is tested with fake processes on a fake clock.
type process interface {
	Pid() int
	// Wait returns how the process ended.
	Wait() exit
	// SignalGroup signals the process group.
	SignalGroup(syscall.Signal) error
}

// exit is how a process ended.
type exit struct {
	code   int    // exit code; -1 when killed by a signal or not waitable
	status string // "exit status 1", "signal: killed"
}

// pipeWaitDelay bounds how long Wait waits for the output pipes after the
// process exited: a grandchild (a daemonized shim) may hold them open.
const pipeWaitDelay = 2 * time.Second

// startExec starts svc's command in a new process group.
func startExec(svc Service) (process, error) {
	cmd := svc.Command()
	if cmd == nil {
		return nil, errors.New("command builder returned nil")
	}
	if len(svc.Env) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, svc.Env...)
	}
	if svc.Output != nil {
		cmd.Stdout, cmd.Stderr = svc.Output, svc.Output
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A session leader (a shell that owns the console, Setsid) already
	// leads its own process group, and setpgid would fail for it.
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid = true
	}
	cmd.WaitDelay = pipeWaitDelay
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return execProcess{cmd}, nil
}

type execProcess struct{ cmd *exec.Cmd }

func (p execProcess) Pid() int { return p.cmd.Process.Pid }

func (p execProcess) Wait() exit {
	err := p.cmd.Wait()
	if ps := p.cmd.ProcessState; ps != nil {
		return exit{code: ps.ExitCode(), status: ps.String()}
	}
	return exit{code: -1, status: fmt.Sprintf("wait: %v", err)}
}

func (p execProcess) SignalGroup(sig syscall.Signal) error {
	// The group id is the leader's pid (Setpgid). Kill by group, not
	// Process.Signal: the leader may be gone while its group lives on.
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
