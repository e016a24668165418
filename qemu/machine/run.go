package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/qemu/qmp"
)

// Result says how a boot ended.
type Result struct {
	// PoweredOff: the guest powered itself off (QMP SHUTDOWN with reason
	// guest-shutdown), by itself or after the power button.
	PoweredOff bool
	// Forced: the guest did not power off within PowerdownTimeout after the
	// power button and QEMU was quit.
	Forced bool
	// Resets counts guest reboots.
	Resets int
}

// ErrNotPoweredOff is returned when QEMU ended without the guest powering
// itself off.
var ErrNotPoweredOff = errors.New("the guest did not power off")

// Run boots the image and returns when QEMU exits. The first receive on
// button presses the power button (system_powerdown); if the guest has not
// powered off PowerdownTimeout later, or on a second receive, QEMU is quit.
// Cancelling ctx kills QEMU. The QEMU command line is printed on cmdOut
// first. The error is nil only when the guest powered itself off.
func Run(ctx context.Context, cfg Config, log *slog.Logger, button <-chan struct{}, cmdOut io.Writer) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	img, err := Inspect(cfg.Dir)
	if err != nil {
		return Result{}, err
	}
	if !img.Direct() {
		if _, err := os.Stat(cfg.Firmware); err != nil {
			return Result{}, fmt.Errorf("boot %s through UEFI: firmware: %w (apt-get install qemu-efi-aarch64)", cfg.Dir, err)
		}
		if cfg.DebugShell || cfg.Append != "" {
			log.Warn("a UEFI image carries its own kernel command line; --debug-shell and --append are ignored", "image", cfg.Dir)
		}
	}
	if _, err := exec.LookPath(cfg.QEMU); err != nil {
		return Result{}, fmt.Errorf("find QEMU: %w (apt-get install qemu-system-arm)", err)
	}
	// A short private directory: unix socket paths are limited to 108 bytes.
	tmp, err := os.MkdirTemp("", "qemuboot")
	if err != nil {
		return Result{}, fmt.Errorf("make QMP socket directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	qmpSocket := filepath.Join(tmp, "qmp.sock")
	for _, p := range []string{cfg.SerialSocket, cfg.MonitorSocket} {
		if p != "" {
			_ = os.Remove(p) // a stale socket from an earlier run
		}
	}

	argv := append([]string{cfg.QEMU}, cfg.Args(img, qmpSocket)...)
	fmt.Fprintf(cmdOut, "+ %s\n", ShellQuote(argv))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Its own process group, so a terminal's ^C reaches only us (QEMU would
	// quit at once on SIGINT); Pdeathsig, so QEMU never outlives us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Pdeathsig fires when the thread that forked QEMU ends, not the
	// process: start it from a thread kept until QEMU exits.
	release, err := nsutil.StartOnKeptThread(cmd)
	if err != nil {
		return Result{}, fmt.Errorf("start %s: %w", cfg.QEMU, err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		release()
		exited <- err
	}()
	start := time.Now()
	log.Info("QEMU started", "pid", cmd.Process.Pid, "image", cfg.Dir, "api", fmt.Sprintf("127.0.0.1:%d", cfg.APIPort), "console", cfg.Console)

	events := make(chan qmp.Event, 16)
	dialCtx, cancelDial := context.WithTimeout(ctx, 30*time.Second)
	monitor, dialErr := qmp.Dial(dialCtx, qmpSocket, events)
	cancelDial()
	if dialErr != nil {
		// QEMU may have failed to start (bad option, locked disk image).
		select {
		case err := <-exited:
			return Result{}, fmt.Errorf("QEMU exited at once: %v", err)
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return Result{}, dialErr
		}
	}
	defer monitor.Close()

	var res Result
	shutdownReason := ""
	var timeout <-chan time.Time
	pressed := false
	quit := func(why string) {
		log.Warn("quitting QEMU", "why", why)
		qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := monitor.Execute(qctx, "quit"); err != nil {
			log.Warn("QMP quit failed; killing QEMU", "err", err)
			_ = cmd.Process.Kill()
		}
	}
	for {
		select {
		case e, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch e.Name {
			case "SHUTDOWN":
				shutdownReason = e.ShutdownReason()
				log.Info("guest shut down", "reason", shutdownReason, "after", time.Since(start).Round(time.Millisecond))
			case "RESET":
				res.Resets++
				log.Info("guest reset (reboot)", "after", time.Since(start).Round(time.Millisecond))
			case "POWERDOWN":
				log.Info("power button pressed")
			}
		case <-button:
			if pressed {
				quit("asked twice")
				continue
			}
			pressed = true
			log.Info("pressing the power button", "timeout", cfg.PowerdownTimeout)
			if _, err := monitor.Execute(ctx, "system_powerdown"); err != nil {
				log.Warn("power button", "err", err)
			}
			timeout = time.After(cfg.PowerdownTimeout)
		case <-timeout:
			timeout = nil
			res.Forced = true
			quit(fmt.Sprintf("the guest did not power off within %s of the power button", cfg.PowerdownTimeout))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return res, ctx.Err()
		case waitErr := <-exited:
			// The SHUTDOWN event precedes the exit; collect what is still
			// in flight until QEMU's end closes the QMP connection.
			drain := time.After(2 * time.Second)
			for events != nil {
				select {
				case e, ok := <-events:
					if !ok {
						events = nil
					} else if e.Name == "SHUTDOWN" {
						shutdownReason = e.ShutdownReason()
					}
				case <-drain:
					events = nil
				}
			}
			res.PoweredOff = shutdownReason == "guest-shutdown"
			log.Info("QEMU exited", "status", exitStatus(waitErr), "guest_powered_off", res.PoweredOff, "after", time.Since(start).Round(time.Millisecond))
			switch {
			case waitErr != nil && !res.PoweredOff:
				return res, fmt.Errorf("QEMU failed: %w", waitErr)
			case res.Forced || !res.PoweredOff:
				return res, fmt.Errorf("%w (QEMU shutdown reason %q)", ErrNotPoweredOff, shutdownReason)
			}
			return res, nil
		}
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}
