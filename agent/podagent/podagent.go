package podagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/reconcile"
	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/netsetup/hostport"
	"github.com/podboot/podboot/netsetup/podnet"
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

// Run runs the agent until ctx ends, then stops every pod gracefully.
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

	// Without the plugins pods keep a loopback-only network: they run,
	// unreachable, rather than not at all.
	var network *podnet.Network
	if cfg.CNIBinDir != "" {
		if network, err = podNetwork(cfg.CNIBinDir, cfg.StateDir, dev.Network.Pods); err != nil {
			log.Error("pod network off: pods get loopback only", "err", err)
		}
	}
	var rtNetwork ctrdruntime.PodNetwork
	var nat *hostport.Manager
	if network != nil {
		if nat, err = nodeNAT(dev.Network.Pods); err != nil {
			log.Error("pod NAT off: pods cannot reach outside the board and hostPorts are refused", "err", err)
			nat = nil
		}
		rtNetwork = networkAdapter{n: network, hp: nat}
	}
	rt, err := ctrdruntime.New(ctx, ctrdruntime.Config{
		Network:  rtNetwork,
		Address:  cfg.ContainerdAddress,
		StateDir: cfg.StateDir,
		RuncPath: cfg.RuncPath,
		RuncRoot: cfg.RuncRoot,
		Mirrors:  dev.Mirrors(),
		Log:      log.With("component", "runtime"),

		// Flags over device.yaml's logs section (docs/runtime.md, "Container logs").
		Logs: cfg.Logs.Or(logs.Config{MaxSize: dev.Logs.MaxSize(), MaxFiles: dev.Logs.ContainerLogMaxFiles, MaxTotal: dev.Logs.MaxTotal()}),
	})
	if err != nil {
		return fmt.Errorf("connect to containerd at %q: %w", cfg.ContainerdAddress, err)
	}
	defer rt.Close()
	if network != nil {
		collectNetworkGarbage(ctx, network, nat, rt, log.With("component", "network"))
	}

	node, err := buildNode(ctx, cfg.NodeName, rt, dev.Resources, dev.Node)
	if err != nil {
		return err
	}
	if err := st.Put(node); err != nil {
		return fmt.Errorf("publish node: %w", err)
	}

	// Without pod cgroups the pods still run, unlimited: a board that
	// cannot enforce limits had better serve its pods than none.
	cgroupMgr, err := podCgroups(cfg.CgroupRoot, node, dev.Resources, log.With("component", "cgroups"))
	if err != nil {
		log.Error("pod cgroups off: limits are not enforced", "err", err)
	}
	collectLeftovers(ctx, cfg.StateDir, cgroupMgr, rt, log.With("component", "leftovers"))

	agentMetrics := newMetrics(cfg.NodeName, st, rt, log.With("component", "metrics"))
	var observeSync func(time.Duration)
	if agentMetrics != nil {
		observeSync = agentMetrics.ObserveSync
	}

	imports := newImportProgress()
	mgr, err := reconcile.NewManager(reconcile.Config{
		Runtime:   importGate{Runtime: rt, progress: imports},
		Pods:      storePublisher{st: st, log: log},
		Events:    recorder,
		StateFile: filepath.Join(cfg.StateDir, "agent-state.json"),
		LogRoot:   filepath.Join(cfg.StateDir, "pods"),
		NodeName:  cfg.NodeName,
		HostIP:    nodeInternalIP(node),
		Now:       time.Now,
		Log:       log.With("component", "reconcile"),
		// kubelet's admission against the node: allocatable, labels, name.
		Admit: func(pod *corev1.Pod, active []*corev1.Pod) admission.Decision {
			return admission.Admit(pod, active, node)
		},
		Cgroups:        podCgroupsOrNil(cgroupMgr),
		MemoryCapacity: node.Status.Capacity.Memory().Value(),
		ObserveSync:    observeSync,
		ResolvConf:     cfg.ResolvConf,

		// kubelet's <root>/pods/<uid>; <state>/pods holds the logs.
		PodsDir: filepath.Join(cfg.StateDir, "kubelet", "pods"),
		// A memory-backed emptyDir is at most the node's allocatable.
		MemoryAllocatable: node.Status.Allocatable.Memory().Value(),
		// An offline board runs the :latest images it has (device.yaml).
		OfflineImageFallback: dev.Images.UseStoredWhenOffline(),
	})
	if err != nil {
		return fmt.Errorf("start pod manager: %w", err)
	}

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	g, gctx := errgroup.WithContext(runCtx)

	g.Go(func() error { return mgr.Run(gctx) })
	// The flash's archives import beside everything else; importGate holds
	// back only the pods whose images are not present yet. Later archives
	// (watch) need no gate: the pull policy decides then.
	images := &imageImporter{dir: filepath.Join(cfg.FlashDir, "images"), rt: rt, log: log.With("component", "images"), progress: imports}
	g.Go(func() error {
		start := time.Now()
		n := images.importAll(gctx)
		images.progress = nil
		imports.finish()
		log.Info("flash images imported", "component", "images", "archives", n, "duration", time.Since(start).Round(time.Millisecond))
		return images.watch(gctx)
	})

	apply := &manifestApplier{st: st, mgr: mgr, rec: recorder, node: node, log: log.With("component", "manifests")}
	if cgroupMgr != nil {
		// kubelet's QoS cgroup update: burstable's cpu share follows the
		// Burstable pods' requests.
		apply.applied = func() {
			if err := cgroupMgr.UpdateQOS(mgr.ActivePods()); err != nil {
				log.Warn("update QoS cgroups", "component", "cgroups", "err", err)
			}
		}
	}
	watcher := manifest.NewWatcher(filepath.Join(cfg.FlashDir, "pods"), manifest.Options{NodeName: cfg.NodeName}, cfg.Resync, log.With("component", "manifests"))
	g.Go(func() error { return watcher.Run(gctx, apply.apply) })

	power, powerOff := powerControl(cfg.PowerPID, os.Getppid(), killProcess)
	opts := api.Options{
		NodeName:   cfg.NodeName,
		GitVersion: KubernetesVersion,
		Log:        log.With("component", "api"),
	}
	if agentMetrics != nil {
		opts.Metrics = agentMetrics
	}
	g.Go(func() error {
		return runEviction(gctx, cfg.NodeName, cfg.FlashDir, dev.Resources, st, recorder, rt, mgr, log.With("component", "eviction"))
	})
	g.Go(func() error { return keepNodeLease(gctx, st, node, log.With("component", "lease")) })
	if power != nil {
		opts.Power = power
		log.Info("power control on", "pid", cfg.PowerPID)
	} else {
		opts.PowerDisabled = powerOff
		if cfg.PowerPID != 0 {
			log.Warn("power control off", "reason", powerOff)
		}
	}
	handler := api.New(st, &logStreamer{st: st, root: filepath.Join(cfg.StateDir, "pods")}, opts)
	listeners, keeper, err := cfg.listeners(dev.API, handler, log.With("component", "api"))
	if err != nil {
		cancelRun()
		_ = g.Wait()
		return err
	}
	if keeper != nil {
		g.Go(func() error {
			keeper.run(gctx)
			return nil
		})
	}
	for _, l := range listeners {
		g.Go(func() error {
			l.serve(gctx, log.With("component", "api"))
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		for _, l := range listeners {
			_ = l.srv.Shutdown(sctx) // a stuck client does not hold up power-off
		}
		return nil
	})

	// Power-off: ctx ends → stop every pod gracefully, then stop the rest.
	select {
	case <-ctx.Done():
		log.Info("stopping all pods")
		sctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
		err := mgr.StopAll(sctx)
		cancel()
		if err != nil {
			log.Error("stop pods", "err", err)
		}
		cancelRun()
	case <-gctx.Done():
	}
	return g.Wait()
}

// listeners are the API's listeners: --listen's plain HTTP on loopback,
// and device.yaml's with --device-listeners. --listen is opened here so a
// bad or taken address stops the agent at once, as devnode expects.
// The certificate keeper, when HTTPS is on, must run beside them.
func (cfg Config) listeners(dev device.API, handler http.Handler, log *slog.Logger) ([]listener, *certKeeper, error) {
	var out []listener
	if cfg.Listen != "" {
		if err := checkLoopback(cfg.Listen); err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, nil, fmt.Errorf("listen on %q: %w", cfg.Listen, err)
		}
		first := true
		out = append(out, listener{
			name: "http",
			srv:  &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
			hint: tcpHint,
			listen: func() (net.Listener, error) {
				if first {
					first = false
					return ln, nil
				}
				return net.Listen("tcp", cfg.Listen)
			},
		})
	}
	if !cfg.DeviceListeners {
		return out, nil, nil
	}
	dl, keeper := deviceListeners(cfg, dev, handler, log)
	return append(out, dl...), keeper, nil
}

// KubernetesVersion is the API version podboot's types come from
// (k8s.io/api v0.37.2), reported by /version.
const KubernetesVersion = "v1.37.2"
