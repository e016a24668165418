package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devnode:", err)
		os.Exit(2)
	}
	// The power-off must finish even when whoever reads devnode's output
	// has gone (a killed test binary): a write to a broken stderr fails
	// instead of killing devnode, and the services write through devnode
	// (a pipe it reads) rather than to that stderr, which SIGPIPE would
	// kill them on.
	signal.Ignore(syscall.SIGPIPE)
	cfg.Ready = os.Stdout
	cfg.ServiceOutput = bestEffort{os.Stderr}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	// SIGTERM and SIGINT are the power button.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("devnode failed", "err", err)
		os.Exit(1)
	}
}

// bestEffort passes output on and drops what cannot be written.
type bestEffort struct{ w io.Writer }

func (b bestEffort) Write(p []byte) (int, error) {
	_, _ = b.w.Write(p)
	return len(p), nil
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("devnode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.FlashDir, "flash", "", "flash directory: pods/, images/, device.yaml (required)")
	fs.StringVar(&cfg.StateDir, "state", "", "runtime state directory; containerd lives in its containerd/ (required)")
	fs.StringVar(&cfg.Listen, "listen", "", "agent API address, a loopback host:port (required)")
	fs.StringVar(&cfg.BinDir, "bin", "", "directory of containerd, containerd-shim-runc-v2, runc and podagent (default: devnode's own directory)")
	fs.StringVar(&cfg.NodeName, "node-name", "", "node name (default: hostname)")
	fs.DurationVar(&cfg.AgentStopTimeout, "agent-stop-timeout", defaultAgentStopTimeout, "how long the agent may take to stop its pods at power-off before it is killed")
	fs.DurationVar(&cfg.ReadyTimeout, "ready-timeout", defaultReadyTimeout, "how long to wait for containerd's socket and the agent's /healthz")
	fs.StringVar(&cfg.CgroupRoot, "cgroup-root", "", "the agent's --cgroup-root (its kubepods go under it), removed at power-off (default /podboot-devnode-<hash of --state>)")
	fs.StringVar(&cfg.CNIBinDir, "cni-bin-dir", "", "directory of the CNI plugins (bin/cni): turns the pod network on in devnode's network namespace (run it in one of its own, e.g. under nsenter --net=); default: pods get loopback only")
	fs.StringVar(&cfg.ResolvConf, "resolv-conf", "", "the agent's --resolv-conf, the base of the pods' /etc/resolv.conf (default: the agent's, /etc/resolv.conf)")
	var parents listFlag
	fs.Var(&parents, "cgroup-parent", "cgroup (relative to each hierarchy) whose empty children are removed at power-off; repeatable (default /"+defaultCgroupParent+")")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.CgroupParents = parents
	if cfg.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("find devnode's directory for --bin: %w", err)
		}
		cfg.BinDir = filepath.Dir(exe)
	}
	return cfg, nil
}
