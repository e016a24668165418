package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/metrics"
	"github.com/podboot/podboot/agent/prober"
	"github.com/podboot/podboot/agent/reconcile"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// podManager is the pods' side: the reconcile manager that runs them on
// the node's runtime, the manifest watcher that tells it what the flash
// wants, and the node-pressure eviction that stops them when the board
// runs short.
type podManager struct {
	mgr     *reconcile.Manager
	probes  *prober.Manager
	watcher *manifest.Watcher
	apply   *manifestApplier
	// flash is the API's writes to the manifests, through the watcher.
	flash *flash

	// for eviction
	nodeName, flashDir string
	resources          device.Resources
	st                 *store.Store
	recorder           *store.Recorder
	nr                 *nodeRuntime
	log                *slog.Logger
}

// newPodManager makes the reconcile manager (which reads its state file
// back) and the manifest watcher; start runs them.
func newPodManager(ctx context.Context, cfg Config, dev device.Device, nr *nodeRuntime, st *store.Store, recorder *store.Recorder, agentMetrics *metrics.Metrics, log *slog.Logger) (*podManager, error) {
	var observeSync func(time.Duration)
	if agentMetrics != nil {
		observeSync = agentMetrics.ObserveSync
	}
	node := nr.node
	// The prober wakes the pod workers; mgr is set before any pod, and so
	// any probe, exists.
	var mgr *reconcile.Manager
	probes := newProber(ctx, nr.ctrd, recorder, agentMetrics, func(uid types.UID) { mgr.Wake(uid) }, log.With("component", "prober"))
	mgr, err := reconcile.NewManager(reconcile.Config{
		Runtime:   importGate{Runtime: nr.ctrd, progress: nr.imports},
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
		Cgroups:        podCgroupsOrNil(nr.cgroups),
		MemoryCapacity: node.Status.Capacity.Memory().Value(),
		ObserveSync:    observeSync,
		ResolvConf:     cfg.ResolvConf,

		// kubelet's <root>/pods/<uid>; <state>/pods holds the logs.
		PodsDir: filepath.Join(cfg.StateDir, "kubelet", "pods"),
		// A memory-backed emptyDir is at most the node's allocatable.
		MemoryAllocatable: node.Status.Allocatable.Memory().Value(),
		// An offline board runs the :latest images it has (device.yaml).
		OfflineImageFallback: dev.Images.UseStoredWhenOffline(),
		// kubelet's probes and lifecycle hooks.
		Probes:       proberResults{m: probes},
		Hooks:        newHookRunner(nr.ctrd, recorder),
		AgentStarted: time.Now(),
	})
	if err != nil {
		probes.Stop()
		return nil, fmt.Errorf("start pod manager: %w", err)
	}

	apply := &manifestApplier{st: st, mgr: mgr, rec: recorder, node: node, log: log.With("component", "manifests")}
	if cgroupMgr := nr.cgroups; cgroupMgr != nil {
		// kubelet's QoS cgroup update: burstable's cpu share follows the
		// Burstable pods' requests.
		apply.applied = func() {
			if err := cgroupMgr.UpdateQOS(mgr.ActivePods()); err != nil {
				log.Warn("update QoS cgroups", "component", "cgroups", "err", err)
			}
		}
	}
	opts := manifest.Options{NodeName: cfg.NodeName}
	watcher := manifest.NewWatcher(filepath.Join(cfg.FlashDir, "pods"), opts, cfg.Resync, log.With("component", "manifests"))
	return &podManager{
		mgr:     mgr,
		probes:  probes,
		watcher: watcher,
		apply:   apply,
		flash:   newFlash(watcher, apply, st, recorder, opts, log.With("component", "flash")),

		nodeName: cfg.NodeName, flashDir: cfg.FlashDir, resources: dev.Resources,
		st: st, recorder: recorder, nr: nr, log: log,
	}, nil
}

// start runs the pod workers, the manifest watcher and eviction in g.
func (p *podManager) start(ctx context.Context, g *errgroup.Group) {
	g.Go(func() error { return p.mgr.Run(ctx) })
	g.Go(func() error {
		<-ctx.Done()
		p.probes.Stop()
		return nil
	})
	g.Go(func() error { return p.watcher.Run(ctx, p.apply.apply) })
	g.Go(func() error { return p.apply.finalizeNamespaces(ctx) })
	g.Go(func() error {
		return runEviction(ctx, p.nodeName, p.flashDir, p.resources, p.st, p.recorder, p.nr.ctrd, p.mgr, p.log.With("component", "eviction"))
	})
}

// SetFleet makes set (nil: none) the fleet's pods, configmaps and secrets,
// of OTA generation generation: they replace the previous generation's as
// a whole, applied at once with the board's own manifests, which win a
// collision. A pod unchanged from the previous generation keeps its UID,
// and runs on. Called before start, the first apply holds them.
func (p *podManager) SetFleet(set *manifest.Set, generation uint64) {
	p.apply.setFleet(set, generation)
}

// Own is the board's own manifest Set, as the watcher last read the
// flash's pods directory (nil before its first read), for the OTA
// controller's collision check of a bundle.
func (p *podManager) Own() *manifest.Set {
	return p.apply.ownSet()
}

// stopAll is the power-off: every pod stopped gracefully, within timeout.
func (p *podManager) stopAll(timeout time.Duration) {
	p.log.Info("stopping all pods")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.mgr.StopAll(ctx); err != nil {
		p.log.Error("stop pods", "err", err)
	}
}
