// Command podagent runs the Pod manifests stored on the flash through
// containerd and serves a kubectl-compatible API. On a board PID 1 starts
// it; on a host bin/devnode does.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

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
	flag.StringVar(&cfg.Listen, "listen", "", "HTTP API address, e.g. 127.0.0.1:8080 (no auth: loopback only)")
	flag.StringVar(&cfg.NodeName, "node-name", "", "node name (default: hostname)")
	flag.DurationVar(&cfg.Resync, "resync", 0, "manifest resync period (default 30s)")
	flag.BoolVar(&debug, "debug", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// SIGTERM and SIGINT mean power-off: stop every pod gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := podagent.Run(ctx, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "podagent:", err)
		os.Exit(1)
	}
}
