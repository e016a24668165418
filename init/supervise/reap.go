package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// reapPoll is how often ReapOrphans looks for zombies without a SIGCHLD
// (signals coalesce, and a child's starter may reap late).
const reapPoll = 5 * time.Second

// ReapOrphans waits for the zombie children of this process that owned
// does not claim, on every SIGCHLD, until ctx ends. Only PID 1 (or a child
// subreaper) needs it: the kernel makes it the parent of every orphan, and
// an orphan nobody waits for stays a zombie forever.
//
// It must not wait for a child that someone else waits for (an exec.Cmd's
// Wait would then fail), so it never calls wait4(-1): it lists this
// process's zombie children in /proc and waits for each unclaimed one by
// pid. owned must claim every child that its starter waits for; pass
// Supervisor.Owns, or a func that also asks the other starters.
func ReapOrphans(ctx context.Context, owned func(pid int) bool, log *slog.Logger) error {
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		return fmt.Errorf("reap orphans: %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(reapPoll)
	defer tick.Stop()
	for {
		reaped, err := reapZombies(fs, os.Getpid(), owned)
		for _, z := range reaped {
			log.Info("reaped orphan", "pid", z.pid, "comm", z.comm, "status", z.status)
		}
		if err != nil {
			log.Warn("reap orphans", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sigs:
		case <-tick.C:
		}
	}
}

type reapedProcess struct {
	pid    int
	comm   string
	status string
}

// reapZombies waits for the zombie children of parent that owned does not
// claim.
func reapZombies(fs procfs.FS, parent int, owned func(pid int) bool) ([]reapedProcess, error) {
	procs, err := fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var reaped []reapedProcess
	var errs []error
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // gone since the listing
		}
		if st.PPID != parent || st.State != "Z" || owned(p.PID) {
			continue
		}
		var ws unix.WaitStatus
		pid, err := unix.Wait4(p.PID, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) || (err == nil && pid == 0) {
			continue // its owner reaped it first
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("wait for orphan %d (%s): %w", p.PID, st.Comm, err))
			continue
		}
		reaped = append(reaped, reapedProcess{pid: p.PID, comm: st.Comm, status: waitStatusString(ws)})
	}
	return reaped, errors.Join(errs...)
}

func waitStatusString(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
