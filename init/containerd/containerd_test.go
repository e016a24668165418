package containerd

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/internal/integration"
)

func TestConfigNamesPrivatePaths(t *testing.T) {
	l := Layout{Dir: "/x/c"}
	cfg := l.Config()
	for _, want := range []string{
		`version = 4`,
		`imports = []`,
		`root = "/x/c/root"`,
		`state = "/x/c/state"`,
		"[plugins.\"io.containerd.server.v1.grpc\"]\n  address = \"/x/c/containerd.sock\"",
		"[plugins.\"io.containerd.server.v1.ttrpc\"]\n  address = \"/x/c/containerd.sock.ttrpc\"",
		`"io.containerd.grpc.v1.cri"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

// The board keeps the root at /var/lib/containerd and the rest in /run.
func TestConfigRootDir(t *testing.T) {
	l := Layout{Dir: "/run/containerd", RootDir: "/var/lib/containerd"}
	cfg := l.Config()
	for _, want := range []string{`root = "/var/lib/containerd"`, `state = "/run/containerd/state"`,
		"address = \"/run/containerd/containerd.sock\""} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

// TestIntegrationDaemonUsesPrivateSocket starts the real daemon and checks
// it serves on the layout's socket (a config it misreads would make it
// listen on the host's /run/containerd/containerd.sock instead).
func TestIntegrationDaemonUsesPrivateSocket(t *testing.T) {
	bin := repoBin(t)
	dir, err := os.MkdirTemp("", "pbc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l := Layout{Dir: dir}
	if err := l.Prepare(); err != nil {
		t.Fatal(err)
	}
	cmd := l.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("unix", l.Address())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving on %s: %v", l.Address(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(l.TTRPC()); err != nil {
		t.Errorf("ttrpc socket: %v", err)
	}
}

func repoBin(t *testing.T) string {
	wd, _ := os.Getwd()
	bin := filepath.Join(wd, "..", "..", "bin")
	if _, err := os.Stat(filepath.Join(bin, "containerd")); err != nil || os.Geteuid() != 0 {
		integration.Unavailable(t, "needs root and bin/containerd: run `make build` and the tests as root")
	}
	return bin
}
