package prober

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/probe"
)

// Prober runs one probe; *probe.Prober satisfies it.
type Prober interface {
	Probe(ctx context.Context, h *corev1.ProbeHandler, t probe.Target, timeout time.Duration) (probe.Result, string, error)
}

var _ Prober = (*probe.Prober)(nil)

// EventRecorder is reconcile's (store's recorder satisfies it).
type EventRecorder interface {
	EventfOnField(obj k8sruntime.Object, fieldPath string, eventtype, reason, messageFmt string, args ...any)
}

// Config is what a Manager needs.
type Config struct {
	Prober     Prober
	Events     EventRecorder
	Registerer prometheus.Registerer // prober_probe_total (+ prober_probe_duration_seconds); nil = none
	// Changed is called (never under the manager's lock) when a result a
	// sync acts on changes: readiness, startup, liveness. The pod worker
	// of uid syncs then (no relist). It is called from the probe workers
	// and must not wait for anything that waits for them (RemovePod,
	// Stop): a non-blocking notification.
	Changed func(uid types.UID)
	Log     *slog.Logger
	Rand    func() float64 // the jitter's source; nil = math/rand/v2
}

// Manager runs the probe workers of every pod it is told about and keeps
// their results (kubelet's prober manager with its three results
// managers).
type Manager struct {
	cfg     Config
	log     *slog.Logger
	rand    func() float64
	metrics *metrics // nil: no Registerer
	ctx     context.Context
	cancel  context.CancelFunc
	// start is when the manager was made: kubelet jitters a worker's first
	// probe only while it is younger than the probe's period, and counts a
	// container started 10 s before it as running before a restart.
	start time.Time
	wg    sync.WaitGroup // every worker

	mu      sync.RWMutex
	pods    map[types.UID]*podProbes
	workers int
	results map[Type]results
}

// podProbes is one pod's workers and the latest spec and status they read.
type podProbes struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	workers map[workerKey]*worker
	view    *podView
}

type workerKey struct {
	container string
	typ       Type
}

// podView is what the workers read of a pod and its published status,
// copied out of them by UpdatePod so that the caller may reuse both.
type podView struct {
	pod    *corev1.Pod
	status *statusView // nil: no status yet
}

type statusView struct {
	phase         corev1.PodPhase
	podIP         string
	allRestarting bool // the AllContainersRestarting condition is True
	containers    map[string]containerView
}

type containerView struct {
	id        string // the status's containerID, "containerd://..."
	running   bool
	startedAt time.Time
	// terminated is set with exitCode when state.terminated is.
	terminated bool
	exitCode   int32
	started    bool
}

// NewManager returns a Manager whose workers live under ctx.
func NewManager(ctx context.Context, cfg Config) *Manager {
	m := &Manager{
		cfg:  cfg,
		log:  cfg.Log,
		rand: cfg.Rand,
		pods: map[types.UID]*podProbes{},
		results: map[Type]results{
			Liveness: {}, Readiness: {}, Startup: {},
		},
		start: time.Now(),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.rand == nil {
		m.rand = rand.Float64
	}
	if cfg.Registerer != nil {
		met, err := newMetrics(cfg.Registerer)
		if err != nil {
			m.log.Error("register the probe metrics", "err", err)
		}
		m.metrics = met
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	return m
}

// UpdatePod tells the manager the pod's spec and latest published status
// (called by the pod worker after each publish). The first call for a pod
// starts one worker per probe (containers and restartable init
// containers), as kubelet's AddPod; later calls only hand the workers the
// status they read (container IDs, state.running.startedAt, started,
// podIP), and run a readiness probe at once for a started container that
// is not ready yet, as kubelet's UpdatePodStatus does. The status may be
// nil (none published yet).
func (m *Manager) UpdatePod(pod *corev1.Pod, status *corev1.PodStatus) {
	view := &podView{pod: pod, status: newStatusView(status)}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return // stopped
	}
	pp, ok := m.pods[pod.UID]
	if !ok {
		pp = &podProbes{workers: map[workerKey]*worker{}}
		var ctx context.Context
		ctx, pp.cancel = context.WithCancel(m.ctx)
		m.pods[pod.UID] = pp
		pp.view = view
		m.addWorkers(ctx, pp, pod)
		return
	}
	pp.view = view
	m.triggerReadiness(pp, status)
}

// addWorkers starts the pod's workers in kubelet's AddPod order: for each
// container then each restartable init container, startup, readiness,
// liveness.
func (m *Manager) addWorkers(ctx context.Context, pp *podProbes, pod *corev1.Pod) {
	add := func(c *corev1.Container, init bool) {
		for _, p := range []struct {
			typ  Type
			spec *corev1.Probe
		}{{Startup, c.StartupProbe}, {Readiness, c.ReadinessProbe}, {Liveness, c.LivenessProbe}} {
			if p.spec == nil {
				continue
			}
			w := m.newWorker(pp, pod, c, init, p.typ, p.spec)
			pp.workers[workerKey{c.Name, p.typ}] = w
			m.workers++
			m.wg.Add(1)
			pp.wg.Add(1)
			var wctx context.Context
			wctx, w.cancel = context.WithCancel(ctx)
			go w.run(wctx)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], false)
	}
	for i := range pod.Spec.InitContainers {
		if isRestartableInitContainer(&pod.Spec.InitContainers[i]) {
			add(&pod.Spec.InitContainers[i], true)
		}
	}
}

// triggerReadiness is the part of kubelet's UpdatePodStatus that asks a
// readiness worker for a probe now: a running, started container whose
// readiness result is not Success. Without it a container would wait up to
// a period after its startup probe succeeded before it can be ready.
func (m *Manager) triggerReadiness(pp *podProbes, status *corev1.PodStatus) {
	if status == nil {
		return
	}
	check := func(cs []corev1.ContainerStatus) {
		for i := range cs {
			c := &cs[i]
			if c.Started == nil || !*c.Started || c.State.Running == nil {
				continue
			}
			if r, ok := m.results[Readiness][RuntimeID(c.ContainerID)]; ok && r == Success {
				continue
			}
			w, ok := pp.workers[workerKey{c.Name, Readiness}]
			if !ok {
				continue
			}
			select {
			case w.trigger <- struct{}{}:
			default: // one is pending already
			}
		}
	}
	check(status.ContainerStatuses)
	check(status.InitContainerStatuses)
}

func newStatusView(s *corev1.PodStatus) *statusView {
	if s == nil {
		return nil
	}
	v := &statusView{
		phase:      s.Phase,
		podIP:      s.PodIP,
		containers: make(map[string]containerView, len(s.ContainerStatuses)+len(s.InitContainerStatuses)),
	}
	for _, c := range s.Conditions {
		if c.Type == corev1.AllContainersRestarting && c.Status == corev1.ConditionTrue {
			v.allRestarting = true
		}
	}
	// Kubelet's worker looks for the container among the containers'
	// statuses first, then the init containers', skipping a status without
	// a container ID (worker.go:235-244).
	add := func(cs []corev1.ContainerStatus) {
		for i := range cs {
			c := &cs[i]
			if c.ContainerID == "" {
				continue
			}
			if _, ok := v.containers[c.Name]; ok {
				continue
			}
			cv := containerView{id: c.ContainerID, started: c.Started != nil && *c.Started}
			if r := c.State.Running; r != nil {
				cv.running = true
				cv.startedAt = r.StartedAt.Time
			}
			if t := c.State.Terminated; t != nil {
				cv.terminated = true
				cv.exitCode = t.ExitCode
			}
			v.containers[c.Name] = cv
		}
	}
	add(s.ContainerStatuses)
	add(s.InitContainerStatuses)
	return v
}

// StopLivenessAndStartup stops the pod's liveness and startup workers and
// waits for them (kubelet calls it when a pod starts terminating; its
// readiness workers go on until RemovePod).
func (m *Manager) StopLivenessAndStartup(uid types.UID) {
	m.mu.RLock()
	pp := m.pods[uid]
	var stop []*worker
	if pp != nil {
		for k, w := range pp.workers {
			if k.typ == Liveness || k.typ == Startup {
				stop = append(stop, w)
			}
		}
	}
	m.mu.RUnlock()
	for _, w := range stop {
		w.cancel()
	}
	for _, w := range stop {
		<-w.done
	}
}

// RemovePod stops the pod's workers, waits for them to return, drops their
// results.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	pp := m.pods[uid]
	delete(m.pods, uid)
	m.mu.Unlock()
	if pp == nil {
		return
	}
	pp.cancel()
	// A worker drops its results as it returns (worker.go:171-184).
	pp.wg.Wait()
}

// Liveness returns the liveness result of the container with runtime ID
// containerID; ok is false when there is none.
func (m *Manager) Liveness(containerID string) (Result, bool) {
	return m.result(Liveness, containerID)
}

// Readiness returns the readiness result of a container, as Liveness.
func (m *Manager) Readiness(containerID string) (Result, bool) {
	return m.result(Readiness, containerID)
}

// Startup returns the startup result of a container, as Liveness.
func (m *Manager) Startup(containerID string) (Result, bool) {
	return m.result(Startup, containerID)
}

func (m *Manager) result(t Type, containerID string) (Result, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.results[t][RuntimeID(containerID)]
	return r, ok
}

// Workers is the number of live probe workers.
func (m *Manager) Workers() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.workers
}

// Stop stops every worker and waits for them.
func (m *Manager) Stop() {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	clear(m.pods)
	m.mu.Unlock()
}

// setResult records a worker's result and, outside the lock, tells the pod
// worker when it is one kubelet's syncLoop syncs the pod for
// (kubelet.go:2809-2830): any change of readiness or startup, a liveness
// result that became Failure.
func (m *Manager) setResult(t Type, uid types.UID, id string, r Result) {
	m.mu.Lock()
	changed := m.results[t].set(id, r)
	m.mu.Unlock()
	if !changed || m.cfg.Changed == nil {
		return
	}
	if t == Liveness && r != Failure {
		return
	}
	m.cfg.Changed(uid)
}

func (m *Manager) removeResult(t Type, id string) {
	m.mu.Lock()
	delete(m.results[t], id)
	m.mu.Unlock()
}

// removeWorker is called by a worker as it returns.
func (m *Manager) removeWorker(w *worker) {
	m.mu.Lock()
	if cur, ok := w.pp.workers[workerKey{w.container.Name, w.typ}]; ok && cur == w {
		delete(w.pp.workers, workerKey{w.container.Name, w.typ})
	}
	m.workers--
	m.mu.Unlock()
}

// view returns the latest spec and status of w's pod.
func (m *Manager) view(pp *podProbes) *podView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return pp.view
}

func isRestartableInitContainer(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
