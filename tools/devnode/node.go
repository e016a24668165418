package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/podboot/podboot/init/containerd"
	"github.com/podboot/podboot/init/supervise"
)

const (
	// defaultAgentStopTimeout is podagent's own bound on stopping its pods
	// (podagent.Config.StopTimeout, 5 minutes) plus a margin for it to
	// exit after the last pod.
	defaultAgentStopTimeout = 5*time.Minute + 30*time.Second
	defaultReadyTimeout     = 2 * time.Minute
	containerdStopTimeout   = 15 * time.Second
	// defaultCgroupParent is where containerd's default spec puts a
	// container's cgroup: /<namespace>/<id>.
	defaultCgroupParent = containerd.Namespace
)

// Config is devnode's command line.
type Config struct {
	FlashDir, StateDir, Listen, BinDir, NodeName string
	AgentStopTimeout, ReadyTimeout               time.Duration
	CgroupParents                                []string
	// CgroupRoot is the agent's --cgroup-root, this node's own, so that
	// nodes on one host keep apart; its whole tree goes at power-off.
	CgroupRoot string
	// CNIBinDir turns the agent's pod network on (its --cni-bin-dir): a
	// bridge, NAT rules and sysctls in devnode's network namespace, so
	// run it in a namespace of its own to leave the host's alone.
	CNIBinDir string
	// ResolvConf is the agent's --resolv-conf; empty keeps its default.
	ResolvConf string

	Ready         io.Writer // receives "ready"
	ServiceOutput io.Writer // containerd's and podagent's stdout and stderr
}

func (c *Config) validate() error {
	if c.FlashDir == "" || c.StateDir == "" || c.Listen == "" {
		return errors.New("--flash, --state and --listen are required")
	}
	if err := checkLoopback(c.Listen); err != nil {
		return err
	}
	paths := []*string{&c.FlashDir, &c.StateDir, &c.BinDir}
	for _, optional := range []*string{&c.CNIBinDir, &c.ResolvConf} {
		if *optional != "" {
			paths = append(paths, optional)
		}
	}
	for _, d := range paths {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return fmt.Errorf("absolute path of %q: %w", *d, err)
		}
		*d = abs
	}
	if st, err := os.Stat(c.FlashDir); err != nil || !st.IsDir() {
		return fmt.Errorf("flash directory %q: not a directory (%v)", c.FlashDir, err)
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "podagent"} {
		p := filepath.Join(c.BinDir, b)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("binary %q (from --bin): %w", p, err)
		}
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name from hostname: %w", err)
		}
		c.NodeName = h
	}
	if c.AgentStopTimeout <= 0 {
		c.AgentStopTimeout = defaultAgentStopTimeout
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = defaultReadyTimeout
	}
	if len(c.CgroupParents) == 0 {
		c.CgroupParents = []string{defaultCgroupParent}
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = defaultCgroupRoot(c.StateDir)
	}
	if c.Ready == nil {
		c.Ready = io.Discard
	}
	return nil
}

// checkLoopback refuses an address other hosts could reach: the agent's
// API has no authentication on a development host.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("--listen %q: no port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: not a loopback address (the API has no authentication; use 127.0.0.1 or [::1])", addr)
	}
	return nil
}

// run boots the node, prints "ready", and powers it off when ctx ends.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("create state directory %q: %w", cfg.StateDir, err)
	}
	layout := containerd.Layout{Dir: filepath.Join(cfg.StateDir, "containerd")}
	if err := layout.Prepare(); err != nil {
		return err
	}
	sup := supervise.New(log)
	bootErr := boot(ctx, cfg, layout, sup, log)
	if bootErr == nil {
		fmt.Fprintln(cfg.Ready, "ready")
		log.Info("node ready", "listen", cfg.Listen, "state", cfg.StateDir)
		<-ctx.Done()
	}
	log.Info("powering off")
	offErr := powerOff(cfg, layout, sup, log)
	if offErr == nil {
		log.Info("powered off")
	}
	return errors.Join(bootErr, offErr)
}

// boot starts containerd, waits for its socket, starts the agent and waits
// for its /healthz.
func boot(ctx context.Context, cfg Config, layout containerd.Layout, sup *supervise.Supervisor, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	// A stale socket from an unclean stop would answer nothing.
	if err := os.Remove(layout.Address()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale containerd socket: %w", err)
	}
	err := sup.Start(supervise.Service{
		Name:        "containerd",
		Command:     func() *exec.Cmd { return layout.Command(cfg.BinDir) },
		Output:      cfg.ServiceOutput,
		StopTimeout: containerdStopTimeout,
	})
	if err != nil {
		return err
	}
	if err := waitSocket(ctx, layout.Address()); err != nil {
		return err
	}
	log.Info("containerd is up", "address", layout.Address())
	err = sup.Start(supervise.Service{
		Name: "podagent",
		Command: func() *exec.Cmd {
			return exec.Command(filepath.Join(cfg.BinDir, "podagent"), agentArgs(cfg, layout)...)
		},
		Output:      cfg.ServiceOutput,
		StopTimeout: cfg.AgentStopTimeout,
	})
	if err != nil {
		return err
	}
	return waitHealthy(ctx, "http://"+cfg.Listen+"/healthz")
}

func agentArgs(cfg Config, layout containerd.Layout) []string {
	args := []string{
		"--flash", cfg.FlashDir,
		"--state", cfg.StateDir,
		"--containerd", layout.Address(),
		"--runc", filepath.Join(cfg.BinDir, "runc"),
		"--runc-root", layout.RuncRoot(),
		"--listen", cfg.Listen,
		"--node-name", cfg.NodeName,
		"--cgroup-root", cfg.CgroupRoot,
	}
	if cfg.CNIBinDir != "" {
		args = append(args, "--cni-bin-dir", cfg.CNIBinDir)
	}
	if cfg.ResolvConf != "" {
		args = append(args, "--resolv-conf", cfg.ResolvConf)
	}
	return args
}

// defaultCgroupRoot names the node's cgroup root after its state
// directory: the same across restarts of one node (its pods keep their
// cgroups), different for nodes side by side.
func defaultCgroupRoot(stateDir string) string {
	sum := sha256.Sum256([]byte(stateDir))
	return "/podboot-devnode-" + hex.EncodeToString(sum[:4])
}

const pollInterval = 100 * time.Millisecond

// waitSocket waits until something accepts connections on the unix socket.
func waitSocket(ctx context.Context, path string) error {
	var d net.Dialer
	for {
		c, dialErr := d.DialContext(ctx, "unix", path)
		if dialErr == nil {
			c.Close()
			return nil
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return fmt.Errorf("wait for containerd socket %q: %w (last: %v)", path, err, dialErr)
		}
	}
}

// waitHealthy polls url until it answers 200.
func waitHealthy(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health check %q: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		if err := sleep(ctx, pollInterval); err != nil {
			return fmt.Errorf("wait for agent health at %q: %w (last: %v)", url, err, last)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// powerOff stops the agent (which stops its pods), then containerd, then
// removes what they left behind.
func powerOff(cfg Config, layout containerd.Layout, sup *supervise.Supervisor, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.AgentStopTimeout+containerdStopTimeout+10*time.Second)
	defer cancel()
	stopErr := sup.Stop(ctx)
	cleanErr := cleanUp(cfg, layout, log)
	return errors.Join(stopErr, cleanErr)
}
