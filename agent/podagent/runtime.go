package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/cgroups"
	"github.com/podboot/podboot/agent/logs"
	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/netsetup/hostport"
	"github.com/podboot/podboot/netsetup/podnet"
)

// nodeRuntime is the machine the pods run on: the containerd runtime with
// the pod network and NAT, the Node object that describes the board, the
// pod cgroups and the flash's images.
type nodeRuntime struct {
	ctrd    *ctrdruntime.Runtime
	node    *corev1.Node
	cgroups *cgroups.Manager // nil: pod cgroups are off
	// imports tells the pod manager which of the flash's archives are
	// still being imported (importGate).
	imports *importProgress
	images  *imageImporter
	// otaImages are the running OTA generation's archives, imported at
	// boot with the flash's (addBootImages); nil when none runs.
	otaImages *imageImporter
	st        *store.Store
	log       *slog.Logger
}

// newNodeRuntime connects to containerd, collects what a dead agent left
// (network allocations, mounts, cgroups), publishes the Node and makes the
// pod cgroups. It must be done before the pod manager starts; close
// releases it.
func newNodeRuntime(ctx context.Context, cfg Config, dev device.Device, st *store.Store, log *slog.Logger) (*nodeRuntime, error) {
	// Without the plugins pods keep a loopback-only network: they run,
	// unreachable, rather than not at all.
	var network *podnet.Network
	var err error
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
		return nil, fmt.Errorf("connect to containerd at %q: %w", cfg.ContainerdAddress, err)
	}
	if network != nil {
		collectNetworkGarbage(ctx, network, nat, rt, log.With("component", "network"))
	}

	node, err := buildNode(ctx, cfg.NodeName, rt, dev.Resources, dev.Node)
	if err != nil {
		rt.Close()
		return nil, err
	}
	if err := st.Put(node); err != nil {
		rt.Close()
		return nil, fmt.Errorf("publish node: %w", err)
	}

	// Without pod cgroups the pods still run, unlimited: a board that
	// cannot enforce limits had better serve its pods than none.
	cgroupMgr, err := podCgroups(cfg.CgroupRoot, node, dev.Resources, log.With("component", "cgroups"))
	if err != nil {
		log.Error("pod cgroups off: limits are not enforced", "err", err)
	}
	collectLeftovers(ctx, cfg.StateDir, cgroupMgr, rt, log.With("component", "leftovers"))

	imports := newImportProgress()
	return &nodeRuntime{
		ctrd:    rt,
		node:    node,
		cgroups: cgroupMgr,
		imports: imports,
		images:  &imageImporter{dir: filepath.Join(cfg.FlashDir, "images"), rt: rt, log: log.With("component", "images"), progress: imports},
		st:      st,
		log:     log,
	}, nil
}

// start runs the runtime's own loops in g: the flash's images and the
// node's lease.
func (n *nodeRuntime) start(ctx context.Context, g *errgroup.Group) {
	// The flash's archives import beside everything else; importGate holds
	// back only the pods whose images are not present yet. Later archives
	// (watch) need no gate: the pull policy decides then.
	g.Go(func() error {
		start := time.Now()
		count := n.images.importAll(ctx)
		n.images.progress = nil
		if n.otaImages != nil {
			count += n.otaImages.importAll(ctx)
			n.otaImages.progress = nil
		}
		n.imports.finish()
		n.log.Info("flash images imported", "component", "images", "archives", count, "duration", time.Since(start).Round(time.Millisecond))
		return n.images.watch(ctx)
	})
	g.Go(func() error { return keepNodeLease(ctx, n.st, n.node, n.log.With("component", "lease")) })
}

// addBootImages imports dir's archives at boot too, behind the same gate
// as the flash's; call it before start.
func (n *nodeRuntime) addBootImages(dir string) {
	n.otaImages = &imageImporter{dir: dir, rt: n.ctrd, log: n.images.log, progress: n.imports}
}

func (n *nodeRuntime) close() { n.ctrd.Close() }
