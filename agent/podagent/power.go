package podagent

import (
	"fmt"
	"syscall"
)

// Signals PID 1 understands (busybox init's convention, which
// init/ follows): SIGUSR2 powers off, SIGTERM reboots.
const (
	PowerOffSignal = syscall.SIGUSR2
	RebootSignal   = syscall.SIGTERM
)

// signalPower asks a process (the board's PID 1) to power off or reboot by
// a signal. It implements api.Power.
type signalPower struct {
	pid  int
	kill func(pid int, sig syscall.Signal) error
}

func (p signalPower) PowerOff() error { return p.send(PowerOffSignal) }
func (p signalPower) Reboot() error   { return p.send(RebootSignal) }

func (p signalPower) send(sig syscall.Signal) error {
	if err := p.kill(p.pid, sig); err != nil {
		return fmt.Errorf("send %v to process %d: %w", sig, p.pid, err)
	}
	return nil
}

// powerControl decides whether the API may signal pid. It only does when
// pid started this agent: on a host, podagent's default --power-pid 1 is
// the host's init (systemd reads SIGTERM as "re-execute" and SIGUSR2 as
// "dump state"), so a POST to a development agent must not reach it.
// disabled is the reason shown to clients when power control is off.
func powerControl(pid, ppid int, kill func(int, syscall.Signal) error) (power *signalPower, disabled string) {
	switch {
	case pid == 0:
		return nil, "power control is off (podagent --power-pid 0)"
	case pid < 0:
		return nil, fmt.Sprintf("power control is off: --power-pid %d is not a process id", pid)
	case pid != ppid:
		return nil, fmt.Sprintf("power control is off: process %d (--power-pid) did not start this agent (its parent is %d), so it is not the board's init", pid, ppid)
	}
	return &signalPower{pid: pid, kill: kill}, ""
}

func killProcess(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
