// Package power turns what asks the board to stop into an Action: the
// signals podagent and the kernel send PID 1 (busybox init's convention:
// SIGUSR2 and SIGPWR power off, SIGTERM reboots, SIGINT is ctrl-alt-del),
// and a press of KEY_POWER on any input device (QEMU virt's
// system_powerdown arrives through gpio-keys; so does the Pi 5's button).
package power

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Action is what the board does when it stops.
type Action int

const (
	None Action = iota
	PowerOff
	Reboot
)

func (a Action) String() string {
	switch a {
	case PowerOff:
		return "poweroff"
	case Reboot:
		return "reboot"
	}
	return "none"
}

// RebootCmd is reboot(2)'s command for a.
func (a Action) RebootCmd() int {
	if a == PowerOff {
		return unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	return unix.LINUX_REBOOT_CMD_RESTART
}

// Signals are the signals PID 1 listens to for power actions.
var Signals = []os.Signal{syscall.SIGUSR2, syscall.SIGPWR, syscall.SIGTERM, syscall.SIGINT}

// FromSignal maps a signal to its action.
func FromSignal(sig os.Signal) Action {
	switch sig {
	case syscall.SIGUSR2, syscall.SIGPWR:
		return PowerOff
	case syscall.SIGTERM, syscall.SIGINT:
		return Reboot
	}
	return None
}

// Shutdown is the error run returns to ask main for reboot(2): PID 1 has
// stopped everything and main only makes the system call.
type Shutdown struct {
	Action Action
	Reason string
}

func (s *Shutdown) Error() string { return fmt.Sprintf("%s: %s", s.Action, s.Reason) }

// Input event constants from linux/input-event-codes.h.
const (
	EvKey    = 1
	KeyPower = 116
)

// eventSize is sizeof(struct input_event) on 64-bit Linux: a timeval (two
// 8-byte words), type and code (u16), value (s32).
const eventSize = 24

// Event is one struct input_event.
type Event struct {
	Type  uint16
	Code  uint16
	Value int32
}

// IsPowerPress reports a press (value 1; 0 is release, 2 autorepeat) of
// the power key.
func (e Event) IsPowerPress() bool { return e.Type == EvKey && e.Code == KeyPower && e.Value == 1 }

// ParseEvent decodes one input_event in the machine's byte order.
func ParseEvent(b []byte) (Event, error) {
	if len(b) != eventSize {
		return Event{}, fmt.Errorf("input event: %d bytes, want %d", len(b), eventSize)
	}
	ne := binary.NativeEndian
	return Event{Type: ne.Uint16(b[16:]), Code: ne.Uint16(b[18:]), Value: int32(ne.Uint32(b[20:]))}, nil
}

// WaitPowerKey reads events from r until the power key is pressed (nil)
// or r fails.
func WaitPowerKey(r io.Reader) error {
	buf := make([]byte, eventSize)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		ev, err := ParseEvent(buf)
		if err != nil {
			return err
		}
		if ev.IsPowerPress() {
			return nil
		}
	}
}

// WatchInput watches every device matching glob (/dev/input/event*) for a
// power key press and sends PowerOff to out. It looks for new devices
// every rescan, so a button whose driver is probed late is still heard.
func WatchInput(ctx context.Context, glob string, rescan time.Duration, out chan<- Action, log *slog.Logger) {
	watching := map[string]bool{}
	t := time.NewTicker(rescan)
	defer t.Stop()
	for {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if watching[p] {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				log.Warn("power button: open input device", "path", p, "err", err)
				watching[p] = true
				continue
			}
			watching[p] = true
			log.Debug("power button: watching", "path", p)
			go func() {
				defer f.Close()
				err := WaitPowerKey(f)
				if err == nil {
					log.Info("power button pressed", "device", p)
					select {
					case out <- PowerOff:
					case <-ctx.Done():
					}
					return
				}
				if !errors.Is(err, os.ErrClosed) {
					log.Warn("power button: read input device", "path", p, "err", err)
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
