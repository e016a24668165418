package podagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// Config is what podagent's flags say.
type Config struct {
	FlashDir          string // pods/, images/, device.yaml
	StateDir          string // runtime state: logs, pinned namespaces, state file
	ContainerdAddress string
	RuncPath          string
	RuncRoot          string
	// Listen is a loopback address for the plain-HTTP API without
	// authentication ("" = none): devnode's and the tests'.
	Listen string
	// DeviceListeners serves device.yaml's api listeners: HTTPS with the
	// flash credentials and the AF_VSOCK port. Off by default because on a
	// host they are not the agent's to take (the host's /dev/vsock belongs
	// to the machine, :6443 may be in use); the board's PID 1 turns it on.
	DeviceListeners bool
	// PowerPID is the process the power endpoints signal (the board's
	// PID 1); 0 turns them off. It must be the agent's parent.
	PowerPID int
	NodeName string
	// CNIBinDir holds the CNI plugins (bridge, host-local) of the pod
	// network; "" gives pods a loopback-only network (devnode on a
	// development host, whose own network is not the agent's to change).
	CNIBinDir string
	// ResolvConf is the node's resolver file that pods' resolv.conf start
	// from (kubelet's --resolv-conf, default /etc/resolv.conf).
	ResolvConf string
	// CgroupRoot is kubelet's --cgroup-root: the pods' kubepods cgroup is
	// made under it ("/" on the board; devnode gives each node its own).
	CgroupRoot string
	// Resync is how often the manifest directory is re-read even without
	// an inotify event.
	Resync time.Duration
	// StopTimeout bounds the power-off: pods get their grace periods, but
	// not more than this in total.
	StopTimeout time.Duration
	Logs        logs.Config
}

func (c *Config) setDefaults() error {
	if c.FlashDir == "" || c.StateDir == "" || c.ContainerdAddress == "" {
		return errors.New("--flash, --state and --containerd are required")
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node name: %w", err)
		}
		c.NodeName = h
	}
	if c.CgroupRoot == "" {
		c.CgroupRoot = "/"
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.Resync == 0 {
		c.Resync = 30 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 5 * time.Minute
	}
	return nil
}

// Run runs the agent until ctx ends, then stops every pod gracefully. It
// composes the agent's three parts: the node's runtime (runtime.go), the
// pod manager (manager.go) and the API (serve.go); every goroutine they
// start belongs to Run's errgroup.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("create state dir %q: %w", cfg.StateDir, err)
	}
	// A bad device.yaml is reported and the defaults are used: the board
	// must still run its pods.
	dev, err := device.Load(filepath.Join(cfg.FlashDir, "device.yaml"))
	if err != nil {
		log.Error("device config ignored", "err", err)
	}
	st := store.New(time.Now)
	recorder := store.NewRecorder(st, cfg.NodeName, time.Now)

	nr, err := newNodeRuntime(ctx, cfg, dev, st, log)
	if err != nil {
		return err
	}
	defer nr.close()
	agentMetrics := newMetrics(cfg.NodeName, st, nr.ctrd, log.With("component", "metrics"))
	pods, err := newPodManager(ctx, cfg, dev, nr, st, recorder, agentMetrics, log)
	if err != nil {
		return err
	}

	// OTA's generation is set before the pods start (see newOTA).
	otaCtl := newOTA(ctx, cfg, dev, st, recorder, pods, nr, agentMetrics, log)

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	g, gctx := errgroup.WithContext(runCtx)
	pods.start(gctx, g)
	nr.start(gctx, g)
	if otaCtl != nil {
		g.Go(func() error { return otaCtl.Run(gctx) })
	}

	var otaEndpoints api.OTA
	if otaCtl != nil {
		otaEndpoints = otaAPI{otaCtl}
	}
	server, err := newAPIServer(cfg, dev, st, agentMetrics, nr.streams(), pods.flash, otaEndpoints, log)
	if err != nil {
		cancelRun()
		_ = g.Wait()
		return err
	}
	server.start(gctx, g)

	// Power-off: ctx ends → stop every pod gracefully, then stop the rest.
	select {
	case <-ctx.Done():
		pods.stopAll(cfg.StopTimeout)
		cancelRun()
	case <-gctx.Done():
	}
	return g.Wait()
}

// KubernetesVersion is the API version podboot's types come from
// (k8s.io/api v0.37.2), reported by /version.
const KubernetesVersion = "v1.37.2"
