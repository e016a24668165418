package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/procfs"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/store"
)

// Config says where the figures come from.
type Config struct {
	// NodeName names the NodeMetrics.
	NodeName string
	// Stats reads the containers' cgroups.
	Stats runtime.StatsReader
	// Store holds the pods (their labels and phases) and the node.
	Store *store.Store
	// ProcRoot is procfs' mount point; "" is /proc.
	ProcRoot string
	// Log receives what a scrape cannot report; nil discards it.
	Log *slog.Logger
}

// Metrics measures the node and its containers. Its methods are safe for
// concurrent use.
type Metrics struct {
	nodeName string
	stats    runtime.StatsReader
	store    *store.Store
	proc     procfs.FS
	procRoot string
	log      *slog.Logger
	now      func() time.Time

	all      *prometheus.Registry // /metrics
	cadvisor *prometheus.Registry // /metrics/cadvisor

	// syncDuration is the agent's reconcile duration: one observation per
	// pod sync, as kubelet's kubelet_pod_worker_duration_seconds.
	syncDuration prometheus.Histogram

	mu      sync.Mutex
	samples []sample // kept for CPU rates, oldest first
}

// New returns the node's metrics.
func New(cfg Config) (*Metrics, error) {
	if cfg.Stats == nil || cfg.Store == nil {
		return nil, errors.New("metrics: Stats and Store are required")
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = procfs.DefaultMountPoint
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	fs, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("metrics: procfs at %q: %w", cfg.ProcRoot, err)
	}
	m := &Metrics{
		nodeName: cfg.NodeName, stats: cfg.Stats, store: cfg.Store,
		proc: fs, procRoot: cfg.ProcRoot, log: cfg.Log, now: time.Now,
	}
	containers := newCadvisorCollector(m)
	m.cadvisor = prometheus.NewRegistry()
	m.cadvisor.MustRegister(containers)
	m.syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "podboot_reconcile_duration_seconds",
		Help: "Duration in seconds of one pod sync: observe the runtime, act, publish the status.",
		// 1 ms to 16 s: an idle sync is a cache read, a start under QEMU
		// takes seconds.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	m.all = prometheus.NewRegistry()
	m.all.MustRegister(containers, newNodeCollector(m), newPodsCollector(cfg.Store), m.syncDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m, nil
}

// Registry is /metrics' registry: containers, node, the agent's own and
// the Go runtime's. The agent may register more collectors on it.
func (m *Metrics) Registry() *prometheus.Registry { return m.all }

// ObserveSync records one pod sync's duration (reconcile.Config.ObserveSync).
func (m *Metrics) ObserveSync(d time.Duration) { m.syncDuration.Observe(d.Seconds()) }

// Handler serves /metrics in Prometheus' text (or negotiated) format.
func (m *Metrics) Handler() http.Handler { return m.handler(m.all) }

// CadvisorHandler serves /metrics/cadvisor: the containers only, as
// kubelet's endpoint of that name.
func (m *Metrics) CadvisorHandler() http.Handler { return m.handler(m.cadvisor) }

func (m *Metrics) handler(reg *prometheus.Registry) http.Handler {
	// A failing source (containerd down) must not hide the others.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelError),
	})
}
