// Package containerd describes a private containerd daemon: where its root,
// state and sockets live and the config file that says so. PID 1 on the
// board, bin/devnode on a host and the integration tests all run containerd
// through it, so every copy of the daemon is laid out the same way and none
// touches the machine's own /var/lib/containerd or /run/containerd.
package containerd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Namespace is the containerd namespace that holds podboot's images and
// containers.
const Namespace = "podboot"

// disabledPlugins are the plugins a pod agent does not use: the CRI server
// (podboot is its own kubelet), its sandbox controller, NRI, the opt plugin
// (writes to /opt) and the image verifier (reads /opt). Measured: without
// them the daemon starts faster and holds less memory.
var disabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.cri.v1.images",
	"io.containerd.cri.v1.runtime",
	"io.containerd.podsandbox.controller.v1.podsandbox",
	"io.containerd.nri.v1.nri",
	"io.containerd.internal.v1.opt",
	"io.containerd.image-verifier.v1.bindir",
	"io.containerd.internal.v1.tracing",
}

// Layout is one private containerd: everything under Dir, except the root
// when RootDir says where (the board keeps it at /var/lib/containerd).
type Layout struct {
	Dir     string
	RootDir string
}

// Root is the daemon's persistent directory (images, snapshots).
func (l Layout) Root() string {
	if l.RootDir != "" {
		return l.RootDir
	}
	return filepath.Join(l.Dir, "root")
}

func (l Layout) State() string      { return filepath.Join(l.Dir, "state") }
func (l Layout) Address() string    { return filepath.Join(l.Dir, "containerd.sock") }
func (l Layout) TTRPC() string      { return filepath.Join(l.Dir, "containerd.sock.ttrpc") }
func (l Layout) ConfigFile() string { return filepath.Join(l.Dir, "config.toml") }

// RuncRoot is runc's state root for the containers of this daemon; it must
// be passed per container (runc's default, /run/containerd/runc, ignores the
// daemon config).
func (l Layout) RuncRoot() string { return filepath.Join(l.Dir, "runc") }

// Config returns the daemon's config file. imports is empty so that
// /etc/containerd/conf.d/*.toml on a development host cannot change it.
func (l Layout) Config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version = 4\nimports = []\nroot = %q\nstate = %q\n", l.Root(), l.State())
	b.WriteString("disabled_plugins = [")
	for i, p := range disabledPlugins {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString("]\n\n")
	// Version 4 configures the servers as plugins; the [grpc] and [ttrpc]
	// tables of version 3 are ignored there (the daemon would then listen
	// on the host's /run/containerd/containerd.sock).
	fmt.Fprintf(&b, "[plugins.\"io.containerd.server.v1.grpc\"]\n  address = %q\n\n", l.Address())
	fmt.Fprintf(&b, "[plugins.\"io.containerd.server.v1.ttrpc\"]\n  address = %q\n\n", l.TTRPC())
	b.WriteString("[debug]\n  level = \"warn\"\n")
	return b.String()
}

// Prepare creates the directories and writes the config file.
func (l Layout) Prepare() error {
	for _, d := range []string{l.Dir, l.Root(), l.State(), l.RuncRoot()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create containerd directory %q: %w", d, err)
		}
	}
	if err := os.WriteFile(l.ConfigFile(), []byte(l.Config()), 0o644); err != nil {
		return fmt.Errorf("write containerd config %q: %w", l.ConfigFile(), err)
	}
	return nil
}

// Command returns the daemon's command line. binDir holds containerd,
// containerd-shim-runc-v2 and runc; it is put first on the daemon's PATH
// because containerd finds the shim, and the shim finds runc, through PATH.
func (l Layout) Command(binDir string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "containerd"), "--config", l.ConfigFile())
	env := os.Environ()
	for i, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			env[i] = "PATH=" + binDir + ":" + strings.TrimPrefix(e, "PATH=")
		}
	}
	cmd.Env = env
	return cmd
}
