// Command init is podboot's PID 1: it mounts the system, loads the board's
// modules, mounts the flash, sets the hostname, clock and network, runs
// containerd and podagent under supervision, and powers off or reboots
// cleanly. See docs/init.md.
//
// run does the work and returns a *power.Shutdown when the board is to
// power off or reboot (Talos's way): main makes the reboot(2) call, so
// every path to it, including a panic, passes through one place.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"time"

	"github.com/u-root/u-root/pkg/libinit"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/init/clock"
	"github.com/podboot/podboot/init/cmdline"
	"github.com/podboot/podboot/init/power"
)

// Config is where PID 1 finds things; the defaults are the initramfs
// layout of the firmware contracts.
type Config struct {
	LoadOrder  string // module list, dependencies first
	FlashDir   string
	E2fsck     string
	BinDir     string // containerd, shim, runc, podagent
	Shell      string
	LogDir     string // bounded service logs
	LogMax     int64  // bytes per log file (one previous file is kept)
	ResolvConf string
	// FlashWait is how long to wait for the flash's block device.
	FlashWait time.Duration
	// Countdown is the delay before a reboot after a fatal error.
	Countdown time.Duration
	// AgentStop and ContainerdStop bound each service's stop.
	AgentStop, ContainerdStop time.Duration
	// ClockSave is how often the time is saved to the flash.
	ClockSave time.Duration
	// MaxFailures is how many failed runs in a row of a service lead to
	// a reboot.
	MaxFailures int
}

func defaultConfig() Config {
	return Config{
		LoadOrder:      "/lib/modules/load.order",
		FlashDir:       "/flash",
		E2fsck:         "/sbin/e2fsck",
		BinDir:         "/bin",
		Shell:          "/bin/sh",
		LogDir:         "/run/podboot/log",
		LogMax:         1 << 20,
		ResolvConf:     "/etc/resolv.conf",
		FlashWait:      10 * time.Second,
		Countdown:      10 * time.Second,
		AgentStop:      60 * time.Second,
		ContainerdStop: 10 * time.Second,
		ClockSave:      clock.SaveInterval,
		MaxFailures:    10,
	}
}

func main() {
	start := time.Now()
	// The kernel starts PID 1 without PATH; containerd finds its shim and
	// the shim finds runc through it, and the shell finds u-root's commands.
	os.Setenv("PATH", "/bin:/sbin:/bbin")
	console := &tee{}
	console.add(os.Stderr)
	log := newLogger(console, start)
	// u-root's packages (dhclient) log through the standard logger: send
	// it to ours at debug level (its lease dump is a screenful; hostnet
	// logs the lease in one line).
	slog.SetDefault(log)
	slog.SetLogLoggerLevel(slog.LevelDebug)
	cfg := defaultConfig()
	log.Info("podboot init starting", "pid", os.Getpid())

	var cl cmdline.Config
	err := safely(log, func() error { return run(context.Background(), cfg, log, console, &cl) })
	var sd *power.Shutdown
	if errors.As(err, &sd) {
		log.Info("system going down", "action", sd.Action, "reason", sd.Reason)
		drainConsole()
		if rerr := unix.Reboot(sd.Action.RebootCmd()); rerr != nil {
			log.Error("reboot(2)", "action", sd.Action, "err", rerr)
		}
		hang()
	}
	fatal(cfg, log, cl, err)
}

// safely runs f, turning a panic into an error with its stack: PID 1 must
// not exit (the kernel would panic, and the board hang with it).
func safely(log *slog.Logger, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("PID 1 panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// fatal handles an error run could not recover from: a debug shell when
// the command line asks for one, else a countdown and a reboot. The flash
// has been synced where run got that far; sync again in case it did not.
func fatal(cfg Config, log *slog.Logger, cl cmdline.Config, err error) {
	log.Error("FATAL: podboot init failed", "err", err)
	unix.Sync()
	if cl.DebugShell {
		log.Error("podboot.debug=shell: starting a shell instead of rebooting")
		for {
			if err := runShell(cfg.Shell); err != nil {
				log.Error("debug shell", "err", err)
				time.Sleep(time.Second)
			}
		}
	}
	for i := int(cfg.Countdown / time.Second); i > 0; i-- {
		fmt.Fprintf(os.Stderr, "podboot: rebooting in %d s\n", i)
		time.Sleep(time.Second)
	}
	unix.Sync()
	drainConsole()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		log.Error("reboot(2)", "err", err)
	}
	hang()
}

// runShell runs the shell on the console as a session leader with the
// console as its controlling terminal (u-root's libinit way), so job
// control and ctrl-c work in it.
func runShell(shell string) error {
	cmd := shellCommand(shell)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", shell, err)
	}
	return nil
}

func shellCommand(shell string) *exec.Cmd {
	cmd := libinit.Command(shell, libinit.WithTTYControl(true))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "HOME=/", "TERM=linux", "PS1=podboot# ")
	return cmd
}

// hang keeps PID 1 alive when reboot(2) failed.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// drainConsole waits until the console has sent what was written to it:
// QEMU exits about 20 ms after reboot(2), and the last lines would be lost.
func drainConsole() {
	_ = unix.IoctlSetInt(int(os.Stdout.Fd()), unix.TCSBRK, 1)
}

// newLogger logs text lines with the time since PID 1 started: the wall
// clock is 1970 until the clock is restored.
func newLogger(w io.Writer, start time.Time) *slog.Logger {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String("up", fmt.Sprintf("%.3f", time.Since(start).Seconds()))
			}
			return a
		},
	})
	return slog.New(h)
}

// reopenConsole makes /dev/console PID 1's stdin, stdout and stderr: the
// kernel only opens it for init when the initramfs has a /dev/console node.
func reopenConsole() error {
	f, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	defer f.Close()
	for _, fd := range []int{0, 1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return fmt.Errorf("dup /dev/console to fd %d: %w", fd, err)
		}
	}
	return nil
}
