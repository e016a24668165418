package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/qemu/internal/fixture"
	"github.com/podboot/podboot/qemu/machine"
)

func TestParse(t *testing.T) {
	defaults := machine.Config{QEMU: machine.DefaultQEMU, Firmware: machine.DefaultFirmware, MemoryMiB: 1024, CPUs: 2, PowerdownTimeout: 90 * time.Second}
	with := func(f func(*machine.Config)) machine.Config { c := defaults; f(&c); return c }
	tests := []struct {
		args    string
		want    machine.Config
		wantErr string
	}{{
		args: "out/qemu-arm64 --api-port 16443 --console /tmp/c.log",
		want: with(func(c *machine.Config) { c.Dir, c.APIPort, c.Console = "out/qemu-arm64", 16443, "/tmp/c.log" }),
	}, {
		args: "--api-port 16443 --console c --debug-shell --serial-socket s --monitor-socket m --forward 18080:80 --forward 2222:22 --snapshot out",
		want: with(func(c *machine.Config) {
			c.Dir, c.APIPort, c.Console, c.DebugShell, c.SerialSocket, c.MonitorSocket, c.Snapshot = "out", 16443, "c", true, "s", "m", true
			c.Forwards = []machine.Forward{{Host: 18080, Guest: 80}, {Host: 2222, Guest: 22}}
		}),
	}, {
		args: "--api-port 16443 --console c", wantErr: "no image directory",
	}, {
		args: "a b --api-port 16443 --console c", wantErr: "one image directory expected, got a b",
	}, {
		args: "out --console c", wantErr: "API port 0",
	}, {
		args: "out --api-port 1 --console c --forward 80", wantErr: "want HOST:GUEST",
	}}
	for _, tt := range tests {
		got, err := parse(strings.Fields(tt.args), io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parse(%s) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse(%s): %v", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parse(%s) (-want +got):\n%s", tt.args, diff)
		}
	}
}

// TestIntegrationBootScript runs qemu/boot as the tests and make run do, and
// sends it SIGTERM: the guest must see the power button and power off, and
// the script exit 0.
func TestIntegrationBootScript(t *testing.T) {
	dir := fixture.TinyImage(t, "console=ttyAMA0")
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	console := filepath.Join(t.TempDir(), "console.log")
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "qemu", "boot"), dir, "--api-port", strconv.Itoa(port), "--console", console)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	for {
		data, _ := os.ReadFile(console)
		if strings.Contains(string(data), "tinyinit: waiting for the power button") {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("qemu/boot exited early: %v\n%s\nconsole:\n%s", err, stderr.String(), data)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("no power-button line on the console within 2m\n%s\nconsole:\n%s", stderr.String(), data)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("qemu/boot after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("qemu/boot did not exit within 2m of SIGTERM\n%s", stderr.String())
	}
	for _, want := range []string{"+ qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024", "hostfwd=tcp:127.0.0.1:" + strconv.Itoa(port) + "-:6443", "guest_powered_off=true"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("qemu/boot's output lacks %q:\n%s", want, stderr.String())
		}
	}
}
