package podagent

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPowerControl(t *testing.T) {
	tests := []struct {
		name         string
		pid, ppid    int
		wantOn       bool
		wantDisabled string
	}{
		{name: "board: PID 1 is the parent", pid: 1, ppid: 1, wantOn: true},
		{name: "another parent that is named", pid: 4242, ppid: 4242, wantOn: true},
		{name: "off", pid: 0, ppid: 1, wantDisabled: "power control is off (podagent --power-pid 0)"},
		{name: "host: started by devnode", pid: 1, ppid: 4242,
			wantDisabled: "power control is off: process 1 (--power-pid) did not start this agent (its parent is 4242), so it is not the board's init"},
		{name: "negative", pid: -1, ppid: 1, wantDisabled: "power control is off: --power-pid -1 is not a process id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, disabled := powerControl(tt.pid, tt.ppid, func(int, syscall.Signal) error { return nil })
			if (p != nil) != tt.wantOn || disabled != tt.wantDisabled {
				t.Errorf("powerControl(%d, parent %d) = on %v, %q; want on %v, %q", tt.pid, tt.ppid, p != nil, disabled, tt.wantOn, tt.wantDisabled)
			}
		})
	}
}

func TestSignalPower(t *testing.T) {
	var sent []string
	p := signalPower{pid: 1, kill: func(pid int, sig syscall.Signal) error {
		sent = append(sent, fmt.Sprintf("%d %v", pid, sig))
		return nil
	}}
	if err := p.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if err := p.Reboot(); err != nil {
		t.Fatal(err)
	}
	// busybox init's convention, which PID 1 follows.
	want := []string{"1 " + syscall.SIGUSR2.String(), "1 " + syscall.SIGTERM.String()}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("signals (-want +got):\n%s", diff)
	}

	failing := signalPower{pid: 7, kill: func(int, syscall.Signal) error { return syscall.ESRCH }}
	err := failing.Reboot()
	if !errors.Is(err, syscall.ESRCH) || err.Error() != "send terminated to process 7: no such process" {
		t.Errorf("Reboot with a failing kill: %v", err)
	}
}
