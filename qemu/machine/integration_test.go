package machine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/qemu/internal/fixture"
	"github.com/podboot/podboot/qemu/machine"
)

// freePort asks the OS for an unused TCP port.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type boot struct {
	console string
	button  chan struct{}
	done    chan error
	res     machine.Result
}

func start(t *testing.T, dir string, timeout time.Duration) *boot {
	b := &boot{console: filepath.Join(t.TempDir(), "console.log"), button: make(chan struct{}, 2), done: make(chan error, 1)}
	cfg := machine.Config{Dir: dir, APIPort: freePort(t), Console: b.console, PowerdownTimeout: timeout}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	go func() {
		var err error
		b.res, err = machine.Run(ctx, cfg, log, b.button, io.Discard)
		b.done <- err
	}()
	return b
}

// waitConsole waits until the console shows want.
func (b *boot) waitConsole(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(b.console)
		if strings.Contains(string(data), want) {
			return
		}
		select {
		case err := <-b.done:
			t.Fatalf("QEMU ended (%v) before the console showed %q:\n%s", err, want, data)
		case <-time.After(100 * time.Millisecond):
		}
	}
	data, _ := os.ReadFile(b.console)
	t.Fatalf("the console did not show %q within 2m:\n%s", want, data)
}

func (b *boot) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.done:
		return err
	case <-time.After(3 * time.Minute):
		t.Fatal("QEMU did not exit within 3m")
		return nil
	}
}

func TestIntegrationPowerButton(t *testing.T) {
	b := start(t, fixture.TinyImage(t, "console=ttyAMA0"), 90*time.Second)
	b.waitConsole(t, "tinyinit: waiting for the power button")
	b.button <- struct{}{}
	if err := b.wait(t); err != nil {
		data, _ := os.ReadFile(b.console)
		t.Fatalf("Run after the power button: %v\nconsole:\n%s", err, data)
	}
	if !b.res.PoweredOff || b.res.Forced {
		t.Errorf("Result = %+v, want the guest powered off by itself", b.res)
	}
	b.waitConsole(t, "tinyinit: powering off: power button")
}

func TestIntegrationGuestPowersOff(t *testing.T) {
	b := start(t, fixture.TinyImage(t, "console=ttyAMA0 tinyinit.poweroff"), 90*time.Second)
	if err := b.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !b.res.PoweredOff {
		t.Errorf("Result = %+v, want PoweredOff", b.res)
	}
}

func TestIntegrationDeafGuestIsQuit(t *testing.T) {
	// Without gpio_keys loaded the button press reaches nobody.
	b := start(t, fixture.TinyImage(t, "console=ttyAMA0 tinyinit.deaf"), 2*time.Second)
	b.waitConsole(t, "tinyinit: deaf")
	b.button <- struct{}{}
	err := b.wait(t)
	if !errors.Is(err, machine.ErrNotPoweredOff) || !b.res.Forced || b.res.PoweredOff {
		t.Errorf("Run = %+v, %v; want Forced and ErrNotPoweredOff", b.res, err)
	}
}
