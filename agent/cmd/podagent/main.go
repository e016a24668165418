// Command podagent runs the Pod manifests stored on the flash through
// containerd and serves a kubectl-compatible API. On a board PID 1 starts
// it with --device-listeners (HTTPS with a token, AF_VSOCK) and power
// control; on a host bin/devnode starts it with a loopback --listen only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/podboot/podboot/agent/podagent"
)

func main() {
	var cfg podagent.Config
	var debug bool
	flag.StringVar(&cfg.FlashDir, "flash", "/flash", "flash directory: pods/, images/, device.yaml")
	flag.StringVar(&cfg.StateDir, "state", "/run/podboot", "runtime state directory (logs, pinned namespaces, agent state)")
	flag.StringVar(&cfg.ContainerdAddress, "containerd", "/run/containerd/containerd.sock", "containerd socket")
	flag.StringVar(&cfg.RuncPath, "runc", "runc", "runc binary")
	flag.StringVar(&cfg.RuncRoot, "runc-root", "", "runc state root (default: runc's)")
	flag.StringVar(&cfg.Listen, "listen", "", "plain-HTTP API address without authentication, loopback only, e.g. 127.0.0.1:8080")
	deviceListeners := autoBool{path: boardFile}
	flag.Var(&deviceListeners, "device-listeners",
		"serve the API on device.yaml's api listeners: HTTPS (api.listen, default :6443) with the flash's api/ credentials, generated if missing, and AF_VSOCK (api.vsockPort, default 10250); true, false or auto (default: on only on a board, where "+boardFile+" exists)")
	flag.IntVar(&cfg.PowerPID, "power-pid", 1, "process the power endpoints signal (SIGUSR2 power off, SIGTERM reboot); only honoured when it is podagent's parent; 0 = off")
	flag.StringVar(&cfg.NodeName, "node-name", "", "node name (default: hostname)")
	flag.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "", "directory of the CNI plugins (bridge, host-local) for the pod network, e.g. /usr/libexec/cni on a board; empty: pods get loopback only")
	flag.StringVar(&cfg.ResolvConf, "resolv-conf", "/etc/resolv.conf", "the node's resolver file, the base of the pods' /etc/resolv.conf (kubelet's --resolv-conf)")
	flag.StringVar(&cfg.CgroupRoot, "cgroup-root", "/", "cgroup under which the pods' kubepods cgroup is made (kubelet's --cgroup-root)")
	flag.DurationVar(&cfg.Resync, "resync", 0, "manifest resync period (default 30s)")
	logFlags(flag.CommandLine, &cfg.Logs)
	flag.BoolVar(&debug, "debug", false, "debug logging")
	flag.Parse()
	cfg.DeviceListeners = deviceListeners.value()

	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// kubelet's streaming server (k8s.io/cri-streaming) logs through klog:
	// its lines (a refused port-forward, a session cut short) join ours.
	klog.SetSlogLogger(log.With("component", "streaming"))

	// SIGTERM and SIGINT mean power-off: stop every pod gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := podagent.Run(ctx, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "podagent:", err)
		os.Exit(1)
	}
}

// boardFile exists in podboot's initramfs only (the image builder writes
// the board name there); a host has none.
const boardFile = "/etc/podboot/board"

// autoBool is a boolean flag that may also be "auto": true when path
// exists. As a bool flag, a bare --device-listeners means true.
type autoBool struct {
	path string
	set  string // "", "true", "false" or "auto"
}

func (a *autoBool) String() string {
	if a == nil || a.set == "" {
		return "auto"
	}
	return a.set
}

func (a *autoBool) Set(s string) error {
	switch s {
	case "auto":
		a.set = s
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true, false or auto, not %q", s)
	}
	a.set = strconv.FormatBool(b)
	return nil
}

func (a *autoBool) IsBoolFlag() bool { return true }

func (a *autoBool) value() bool {
	switch a.set {
	case "true":
		return true
	case "false":
		return false
	}
	_, err := os.Stat(a.path)
	return err == nil
}
