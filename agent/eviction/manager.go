package eviction

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/device"
)

// Kubelet's defaults: the eviction manager's monitoring period and
// --eviction-pressure-transition-period.
const (
	DefaultMonitoringPeriod         = 10 * time.Second
	DefaultPressureTransitionPeriod = 5 * time.Minute
)

// systemNodeCritical is the priority class of pods that are never evicted.
const systemNodeCritical = "system-node-critical"

// Evictor is the pod manager as the eviction loop sees it (reconcile's
// Manager): the pods that may run, and killing one.
type Evictor interface {
	ActivePods() []*corev1.Pod
	Evict(uid types.UID, reason, message string) error
}

// MemoryReader reads the node's memory in bytes.
type MemoryReader interface {
	Memory() (available, capacity int64, err error)
}

// DiskReader reads the filesystem holding the pods' data (nodefs), in bytes.
type DiskReader interface {
	Disk() (available, capacity int64, err error)
}

// EventRecorder records events about the node.
type EventRecorder interface {
	Eventf(obj k8sruntime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures a Manager. Memory, Disk, Stats, Pods, Events and
// Conditions are required.
type Config struct {
	Thresholds []device.Threshold
	Memory     MemoryReader
	Disk       DiskReader
	Stats      runtime.StatsReader
	Pods       Evictor
	NodeName   string
	Events     EventRecorder
	// Conditions receives the node's MemoryPressure and DiskPressure
	// conditions (type, status, reason, message) whenever one changes, and
	// once at the first round.
	Conditions func([]corev1.NodeCondition)
	// MonitoringPeriod is how often the signals are observed (default 10s).
	MonitoringPeriod time.Duration
	// PressureTransitionPeriod is how long a pressure condition stays
	// True after its threshold was last met (default 5m).
	PressureTransitionPeriod time.Duration
	Now                      func() time.Time
	Log                      *slog.Logger
}

// Manager is kubelet's eviction manager, simplified: hard thresholds
// only, at most one pod evicted per round.
type Manager struct {
	cfg Config
	// lastObserved is when each pressure condition's threshold was last met.
	lastObserved map[corev1.NodeConditionType]time.Time
	published    []corev1.NodeCondition
}

// NewManager checks cfg and fills in the defaults.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Memory == nil || cfg.Disk == nil || cfg.Stats == nil || cfg.Pods == nil || cfg.Events == nil || cfg.Conditions == nil {
		return nil, errors.New("new eviction manager: memory, disk, stats, pods, events and conditions are required")
	}
	if cfg.MonitoringPeriod <= 0 {
		cfg.MonitoringPeriod = DefaultMonitoringPeriod
	}
	if cfg.PressureTransitionPeriod <= 0 {
		cfg.PressureTransitionPeriod = DefaultPressureTransitionPeriod
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, lastObserved: map[corev1.NodeConditionType]time.Time{}}, nil
}

// Run observes the node at once and then every monitoring period until
// ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.MonitoringPeriod)
	defer t.Stop()
	for {
		m.Synchronize(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Synchronize is one round (kubelet's synchronize): observe the signals,
// update the pressure conditions, and when a threshold is met evict the
// first pod in rank order that can be evicted. It returns the evicted
// pod's UID, or "".
func (m *Manager) Synchronize(ctx context.Context) types.UID {
	s, err := m.observe()
	if err != nil {
		m.cfg.Log.Warn("eviction manager: observe signals", "err", err)
		return ""
	}
	now := m.cfg.Now()
	met := Met(m.cfg.Thresholds, s)
	for _, c := range Pressure(m.cfg.Thresholds, s) {
		m.lastObserved[c] = now
	}
	m.updateConditions(now)
	if len(met) == 0 {
		return ""
	}
	// kubelet acts on one threshold per round, memory first
	// (byEvictionPriority).
	resourceName := corev1.ResourceEphemeralStorage
	for _, t := range met {
		if t.Signal == device.SignalMemoryAvailable {
			resourceName = corev1.ResourceMemory
		}
	}
	m.cfg.Log.Warn("eviction manager: attempting to reclaim", "resourceName", resourceName)
	usage, err := m.usage(ctx)
	if err != nil {
		m.cfg.Log.Warn("eviction manager: read pod usage", "err", err)
		return ""
	}
	Rank(usage)
	for _, u := range usage {
		if u.Pod.Spec.PriorityClassName == systemNodeCritical {
			continue
		}
		msg := Message(resourceName, m.cfg.Thresholds, s, u)
		if err := m.cfg.Pods.Evict(u.Pod.UID, Reason, msg); err != nil {
			m.cfg.Log.Warn("eviction manager: evict pod", "pod", u.Pod.Namespace+"/"+u.Pod.Name, "err", err)
			continue
		}
		return u.Pod.UID // at most one per round, as kubelet
	}
	m.cfg.Log.Info("eviction manager: unable to evict any pods from the node")
	return ""
}

func (m *Manager) observe() (Signals, error) {
	var s Signals
	var err error
	if s.MemoryAvailable, s.MemoryCapacity, err = m.cfg.Memory.Memory(); err != nil {
		return s, err
	}
	if s.NodefsAvailable, s.NodefsCapacity, err = m.cfg.Disk.Disk(); err != nil {
		return s, err
	}
	return s, nil
}

// usage is every active pod's working set, the sum of its containers'.
func (m *Manager) usage(ctx context.Context) ([]Usage, error) {
	stats, err := m.cfg.Stats.ContainerStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("container stats: %w", err)
	}
	pods := m.cfg.Pods.ActivePods()
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	byUID := map[types.UID]int{}
	out := make([]Usage, len(pods))
	for i, p := range pods {
		out[i] = Usage{Pod: p, ContainerMemoryWorkingSet: map[string]int64{}}
		byUID[p.UID] = i
	}
	for _, c := range stats {
		i, ok := byUID[c.Pod.UID]
		if !ok {
			continue
		}
		out[i].MemoryWorkingSet += int64(c.MemoryWorkingSetBytes)
		out[i].ContainerMemoryWorkingSet[c.Name] += int64(c.MemoryWorkingSetBytes)
	}
	return out, nil
}

// pressureCondition is kubelet's node status setter's wording for one
// condition (pkg/kubelet/nodestatus/setters.go), and the node event
// recorded when it turns on or off.
type pressureCondition struct {
	typ                   corev1.NodeConditionType
	onReason, onMessage   string
	offReason, offMessage string
	onEvent, offEvent     string
}

var pressureConditions = []pressureCondition{
	{corev1.NodeMemoryPressure, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", "NodeHasInsufficientMemory", "NodeHasSufficientMemory"},
	{corev1.NodeDiskPressure, "KubeletHasDiskPressure", "kubelet has disk pressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", "NodeHasDiskPressure", "NodeHasNoDiskPressure"},
}

// updateConditions publishes the pressure conditions when one changed: a
// condition stays True until its threshold has not been met for the
// transition period (kubelet's nodeConditionsLastObservedAt).
func (m *Manager) updateConditions(now time.Time) {
	var conds []corev1.NodeCondition
	for _, pc := range pressureConditions {
		c := corev1.NodeCondition{Type: pc.typ, Status: corev1.ConditionFalse, Reason: pc.offReason, Message: pc.offMessage}
		if at, ok := m.lastObserved[pc.typ]; ok && now.Sub(at) < m.cfg.PressureTransitionPeriod {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, pc.onReason, pc.onMessage
		}
		conds = append(conds, c)
		// The first round records the state as kubelet does at start.
		if m.published == nil || m.published[len(conds)-1].Status != c.Status {
			event := pc.offEvent
			if c.Status == corev1.ConditionTrue {
				event = pc.onEvent
			}
			// kubelet's recordNodeStatusEvent.
			node := &corev1.Node{}
			node.Name = m.cfg.NodeName
			m.cfg.Events.Eventf(node, corev1.EventTypeNormal, event, "Node %s status is now: %s", m.cfg.NodeName, event)
		}
	}
	if m.published != nil && slices.Equal(m.published, conds) {
		return
	}
	m.published = conds
	m.cfg.Conditions(slices.Clone(conds))
}

// ProcMemory reads memory.available from /proc/meminfo: MemAvailable and
// MemTotal. (kubelet takes capacity less the root cgroup's working set; on
// a board without a cgroup for the system, MemAvailable is the kernel's
// own estimate of the same.)
type ProcMemory struct{ FS procfs.FS }

// Memory implements MemoryReader.
func (p ProcMemory) Memory() (available, capacity int64, err error) {
	mi, err := p.FS.Meminfo()
	if err != nil {
		return 0, 0, fmt.Errorf("read meminfo: %w", err)
	}
	if mi.MemAvailableBytes == nil || mi.MemTotalBytes == nil {
		return 0, 0, errors.New("read meminfo: no MemAvailable or MemTotal")
	}
	return int64(*mi.MemAvailableBytes), int64(*mi.MemTotalBytes), nil
}

// Statfs reads nodefs.available from statfs(2) of Dir (the flash): blocks
// available to unprivileged users and the filesystem's size, as cAdvisor.
type Statfs struct{ Dir string }

// Disk implements DiskReader.
func (s Statfs) Disk() (available, capacity int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.Dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %q: %w", s.Dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}
