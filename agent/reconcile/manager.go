package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/backoff"
	"github.com/podboot/podboot/agent/runtime"
)

// PodPublisher receives the pods as the agent runs them.
type PodPublisher interface {
	PublishPod(pod *corev1.Pod)
	RemovePod(namespace, name string, uid types.UID)
}

// EventRecorder records kubelet's events; fieldPath names a container, like
// spec.containers{web}.
type EventRecorder interface {
	Eventf(obj k8sruntime.Object, eventtype, reason, messageFmt string, args ...any)
	EventfOnField(obj k8sruntime.Object, fieldPath string, eventtype, reason, messageFmt string, args ...any)
}

// Config configures a Manager.
type Config struct {
	Runtime runtime.Runtime
	Pods    PodPublisher
	Events  EventRecorder
	// StateFile is the JSON file that survives agent restarts ("" keeps
	// state in memory only).
	StateFile string
	// LogRoot holds <ns>_<name>_<uid>/<container>/<attempt>.log.
	LogRoot string
	// PodsDir holds each pod's directory, <uid>/volumes/... as kubelet's
	// <root>/pods; "" mounts no volumes into containers.
	PodsDir  string
	NodeName string
	HostIP   string
	Now      func() time.Time // default time.Now
	Relist   time.Duration    // default 10s
	Log      *slog.Logger     // default slog.Default()
	// Admit, when set, decides whether a new pod may run beside the active
	// ones (kubelet's admit handlers, e.g. admission.Admit with the node's
	// allocatable). A refused pod is never started: it goes Failed with
	// the decision's reason, as kubelet's rejectPod does.
	Admit func(pod *corev1.Pod, active []*corev1.Pod) admission.Decision
	// Cgroups, when set, gives every pod its cgroup; nil leaves containers
	// where the runtime puts them.
	Cgroups PodCgroups
	// ResolvConf is the node's resolv.conf, the base of the pods' (kubelet's
	// --resolv-conf); "" leaves the images' own.
	ResolvConf string
	// InCluster is set when the node is part of a cluster (fleet mode),
	// where a ClusterFirst pod without cluster DNS gets kubelet's
	// MissingClusterDNS warning; a standalone board (the default) has no
	// cluster DNS by design and gives ClusterFirst pods its resolver
	// without one.
	InCluster bool
	// ObserveSync, when set, receives how long each pod sync took (the
	// agent's reconcile duration metric).
	ObserveSync func(time.Duration)
	// MemoryCapacity is the node's memory in bytes, which Burstable
	// containers' oom_score_adj is relative to; 0 gives containers no
	// resources at all (tests of the bare lifecycle).
	MemoryCapacity int64
	// MemoryAllocatable is the node's allocatable memory in bytes, the
	// largest a memory-backed emptyDir can be; 0 leaves the pod's limit
	// and the volume's sizeLimit to bound it.
	MemoryAllocatable int64
	// OfflineImageFallback: when a pull of policy Always (an untagged or
	// :latest image) fails because no registry answered and the image is
	// in the store, run the stored image with an OfflineFallback Warning
	// event rather than fail with ErrImagePull (device.yaml's
	// images.offlineFallback). Off is kubelet's behaviour.
	OfflineImageFallback bool
	// Probes, when set, runs the containers' probes (agent/prober): each
	// published status is handed to it, and its results decide readiness,
	// startup and liveness restarts. Nil: no probe runs, and a running
	// container is started and ready.
	Probes Probes
	// Hooks, when set, runs the containers' postStart and preStop hooks
	// (agent/lifecycle); nil runs none.
	Hooks HookRunner
	// AgentStarted is when this agent started (kubelet's rule for probe
	// results across its restart; see podstatus.Input).
	AgentStarted time.Time
}

// Probes is the prober as the core sees it.
type Probes interface {
	ProbeResults
	// Readiness: success, when ok (a result, not unknown).
	Readiness(containerID string) (success, ok bool)
	// UpdatePod hands the prober a pod's spec and its latest status.
	UpdatePod(pod *corev1.Pod, status *corev1.PodStatus)
	// RemovePod stops the pod's probes and forgets their results.
	RemovePod(uid types.UID)
}

// DefaultRelist is how often the runtime is relisted to catch changes its
// events missed.
const DefaultRelist = 10 * time.Second

// Manager runs the desired pods on the runtime, one worker per pod UID.
type Manager struct {
	cfg    Config
	crash  *backoff.Backoff // per container
	images *backoff.Backoff // per image and pod
	state  *stateFile
	cache  *podCache
	// saveReq asks Run to write the state file (debounced).
	saveReq chan struct{}

	mu          sync.Mutex
	workers     map[types.UID]*worker
	byName      map[string][]*worker      // namespace/name -> its workers
	desired     map[types.UID]*corev1.Pod // the last desired set
	desiredSeen bool                      // SetDesired was called: orphans may be killed
	stopped     bool                      // StopAll was called: nothing starts again
	runCtx      context.Context           // set while Run runs
	wg          sync.WaitGroup
}

// NewManager checks cfg and loads the state file; a missing or corrupt
// state file is logged and ignored.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("new pod manager: no runtime")
	}
	if cfg.Pods == nil {
		return nil, errors.New("new pod manager: no pod publisher")
	}
	if cfg.Events == nil {
		return nil, errors.New("new pod manager: no event recorder")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Relist <= 0 {
		cfg.Relist = DefaultRelist
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Manager{
		cfg:     cfg,
		crash:   backoff.NewDefault(),
		images:  backoff.NewDefault(),
		workers: map[types.UID]*worker{},
		byName:  map[string][]*worker{},
		cache:   newPodCache(cfg.Runtime),
		saveReq: make(chan struct{}, 1),
	}
	m.state = loadState(cfg.StateFile, cfg.Log)
	if err := m.crash.Restore(m.state.data.CrashBackoff); err != nil {
		cfg.Log.Warn("ignoring saved crash-loop backoffs", "file", cfg.StateFile, "err", err)
	}
	if err := m.images.Restore(m.state.data.ImageBackoff); err != nil {
		cfg.Log.Warn("ignoring saved image pull backoffs", "file", cfg.StateFile, "err", err)
	}
	return m, nil
}

// SetDesired sets the pods that should run. Pods are identified by UID: a
// pod whose UID is no longer desired is terminated with its grace period,
// and a new pod with the same namespace/name starts once it is gone. A pod
// whose UID runs already but whose metadata (labels, annotations,
// managedFields, ownerReferences ...) or spec changed takes the new pod, as
// kubelet takes an API pod's update: it is republished at once, and only a
// container whose image changed is restarted, with the new image (kubelet's
// "definition changed"); the other containers are untouched. The UID tells
// that only the fields an update may change differ (agent/manifest).
func (m *Manager) SetDesired(pods []*corev1.Pod) {
	// Workers whose pod changed under the same UID publish the change once
	// the manager's lock is released (a publisher may call back into it).
	var updated []*worker
	defer func() {
		for _, w := range updated {
			w.publishUpdate()
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	m.desiredSeen = true
	now := m.cfg.Now()
	m.desired = make(map[types.UID]*corev1.Pod, len(pods))
	var fresh []*corev1.Pod
	for _, p := range pods {
		if p == nil || p.UID == "" {
			continue
		}
		m.desired[p.UID] = p.DeepCopy()
		w, ok := m.workers[p.UID]
		if !ok {
			fresh = append(fresh, m.desired[p.UID])
			continue
		}
		if w.update(p) {
			updated = append(updated, w)
		}
	}
	// New pods are admitted one by one in kubelet's order, each against the
	// active pods including the ones admitted just before it.
	admission.Order(fresh)
	for _, p := range fresh {
		m.ensureWorkerLocked(p.UID, m.admitLocked(p))
	}
	// Only new pods (woken as their workers start) and pods no longer
	// desired need a sync: waking every worker would make each SetDesired
	// cost O(pods).
	for uid, w := range m.workers {
		if _, ok := m.desired[uid]; !ok && !w.isTerminating() {
			w.terminate(now, false)
		}
	}
}

// SetDeletionGrace sets the grace period, in seconds, of the pod's
// deletion, as an API DELETE's gracePeriodSeconds sets
// deletionGracePeriodSeconds: the SetDesired that next drops the pod
// publishes it with deletionGracePeriodSeconds = seconds and
// deletionTimestamp = now + seconds, and stops its containers with that
// grace (0, kubectl's --force --grace-period=0, and 1, --now, stop them
// with kubelet's minimum of 2 s: SIGTERM, then SIGKILL). On a pod already
// terminating, a shorter grace shortens the deletion in progress, at once;
// a longer one changes nothing (kubelet's pod worker only ever reduces a
// grace). A negative grace is 1, as the API server's delete path makes it.
// A UID without a pod is ignored: there is nothing to delete.
func (m *Manager) SetDeletionGrace(uid types.UID, seconds int64) {
	if seconds < 0 {
		seconds = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.workers[uid]; ok {
		w.setDeletionGrace(seconds, m.cfg.Now())
	}
}

// admitLocked runs cfg.Admit for a new pod; nil means admitted.
func (m *Manager) admitLocked(pod *corev1.Pod) *admission.Decision {
	if m.cfg.Admit == nil {
		return nil
	}
	var active []*corev1.Pod
	for _, w := range m.workers {
		if w.rejection != nil || w.isTerminating() || w.terminal.Load() {
			continue
		}
		if p, ok := m.desired[w.uid]; ok {
			active = append(active, p)
		}
	}
	d := m.cfg.Admit(pod, active)
	if d.Admit {
		return nil
	}
	m.cfg.Log.Warn("pod rejected", "pod", pod.Namespace+"/"+pod.Name, "reason", d.Reason, "message", d.Message)
	return &d
}

// ensureWorkerLocked starts a worker for a desired pod that has none;
// rejection, when set, is the admission's refusal the worker publishes.
func (m *Manager) ensureWorkerLocked(uid types.UID, rejection *admission.Decision) {
	if _, ok := m.workers[uid]; ok {
		return
	}
	w := m.newWorker(m.desired[uid].DeepCopy())
	w.rejection = rejection
	m.addWorkerLocked(w)
	w.wakeUp()
	m.startWorkerLocked(w)
}

// Run adopts what the runtime already runs (without restarting it), then
// works until ctx ends. Returning leaves the pods running.
func (m *Manager) Run(ctx context.Context) error {
	events, err := m.cfg.Runtime.Events(ctx)
	if err != nil {
		return fmt.Errorf("run pod manager: subscribe to runtime events: %w", err)
	}
	m.mu.Lock()
	if m.runCtx != nil {
		m.mu.Unlock()
		return errors.New("run pod manager: already running")
	}
	m.runCtx = ctx
	for _, w := range m.workers {
		m.startWorkerLocked(w)
	}
	m.mu.Unlock()
	defer func() {
		m.wg.Wait()
		m.mu.Lock()
		m.runCtx = nil
		m.mu.Unlock()
		m.flushState()
	}()

	m.relist(ctx)
	ticker := time.NewTicker(m.cfg.Relist)
	defer ticker.Stop()
	// save fires stateDebounce after the first unsaved change.
	save := time.NewTimer(time.Hour)
	save.Stop()
	saving := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				// The stream ended: fall back to relisting only.
				events = nil
				continue
			}
			m.cache.markStale(ev.PodUID)
			m.wake(ev.PodUID)
		case <-ticker.C:
			m.relist(ctx)
		case <-m.saveReq:
			if !saving {
				saving = true
				save.Reset(stateDebounce)
			}
		case <-save.C:
			saving = false
			m.flushState()
		}
	}
}

// StopAll terminates every pod gracefully, concurrently, each with its
// grace period, and returns once all are stopped or ctx ends. Containers
// and sandboxes are left in the runtime; nothing is started afterwards.
func (m *Manager) StopAll(ctx context.Context) error {
	m.mu.Lock()
	now := m.cfg.Now()
	var done []chan struct{}
	for _, w := range m.workers {
		w.terminate(now, true)
		done = append(done, w.done)
		if m.runCtx == nil && !w.started {
			// Run is not running: drive the workers from here.
			m.runWorker(ctx, w)
		}
	}
	m.stopped = true
	m.desiredSeen = false // nothing new starts, no orphan hunting
	m.desired = nil
	m.wakeAllLocked()
	m.mu.Unlock()
	defer m.flushState()
	for _, d := range done {
		select {
		case <-d:
		case <-ctx.Done():
			return fmt.Errorf("stop all pods: %w", ctx.Err())
		}
	}
	return nil
}

// Wake makes pod uid's worker sync soon, as a runtime event does (the
// prober calls it when a result changes).
func (m *Manager) Wake(uid types.UID) { m.wake(uid) }

func (m *Manager) wake(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w, ok := m.workers[uid]; ok {
		w.wakeUp()
	}
}

func (m *Manager) wakeAllLocked() {
	for _, w := range m.workers {
		w.wakeUp()
	}
}

func (m *Manager) startWorkerLocked(w *worker) {
	if m.runCtx != nil && !w.started {
		m.runWorker(m.runCtx, w)
	}
}

func (m *Manager) runWorker(ctx context.Context, w *worker) {
	w.started = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(ctx)
	}()
}

// relist lists the runtime once and wakes the workers whose containers
// changed; pods found in the runtime but not desired are terminated (only
// once the desired set is known, so a restarted agent kills nothing
// before it has read its manifests), and the logs of pods that are gone
// are removed.
func (m *Manager) relist(ctx context.Context) {
	pods, err := m.cache.relist(ctx)
	if err != nil {
		m.cfg.Log.Warn("relist runtime", "err", err)
		return
	}
	now := m.cfg.Now()
	before := m.crash.Len() + m.images.Len()
	m.crash.GC(now)
	m.images.GC(now)
	if m.crash.Len()+m.images.Len() != before {
		m.state.markDirty()
		m.saveState()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, p := range pods {
		w, ok := m.workers[uid]
		if !ok {
			if !m.desiredSeen {
				continue
			}
			if p.sandbox == nil && len(p.containers) == 0 {
				continue // what is left of a pod just cleaned up
			}
			w = m.newOrphanWorker(p.ref, now)
			m.addWorkerLocked(w)
			m.startWorkerLocked(w)
		}
		if w.lastFingerprint() != p.fingerprint() {
			w.wakeUp()
		}
	}
	m.removeStrayLogsLocked(pods)
}

// workerDone forgets a worker whose pod is gone and wakes the others (a
// replacement may be waiting for the name).
func (m *Manager) workerDone(w *worker, forget bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if forget && m.workers[w.uid] == w {
		delete(m.workers, w.uid)
		key := w.ref.Namespace + "/" + w.ref.Name
		m.byName[key] = slices.DeleteFunc(m.byName[key], func(o *worker) bool { return o == w })
		if len(m.byName[key]) == 0 {
			delete(m.byName, key)
		}
		// Desired again while it was terminating: start it afresh.
		if _, ok := m.desired[w.uid]; ok && m.desiredSeen {
			m.ensureWorkerLocked(w.uid, m.admitLocked(m.desired[w.uid]))
		}
	}
	// A replacement with the same name may be waiting for this one.
	for _, o := range m.byName[w.ref.Namespace+"/"+w.ref.Name] {
		if o != w {
			o.wakeUp()
		}
	}
}

// addWorkerLocked registers a new worker by UID and by name.
func (m *Manager) addWorkerLocked(w *worker) {
	m.workers[w.uid] = w
	key := w.ref.Namespace + "/" + w.ref.Name
	m.byName[key] = append(m.byName[key], w)
}

// nameBusy reports whether another worker still runs a pod with the same
// namespace and name (a static pod's replacement waits for it).
func (m *Manager) nameBusy(w *worker) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.byName[w.ref.Namespace+"/"+w.ref.Name] {
		if o != w && o.isTerminating() {
			return true
		}
	}
	return false
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }
