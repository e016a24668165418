package prober

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Kubelet's result label values (prober_manager.go).
const (
	probeResultSuccessful = "successful"
	probeResultFailed     = "failed"
	probeResultUnknown    = "unknown"
)

// metrics are kubelet's ProberResults and ProberDuration
// (prober_manager.go). Kubelet declares them through component-base with
// a stability level, which component-base writes in front of the help
// text; the help strings here are what kubelet's /metrics shows. The
// histogram has no buckets of its own, so it has Prometheus's defaults,
// as kubelet's.
type metrics struct {
	results  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "prober",
			Name:      "probe_total",
			Help:      "[BETA] Cumulative number of a liveness, readiness or startup probe for a container by result.",
		}, []string{"probe_type", "result", "container", "pod", "namespace", "pod_uid"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "prober",
			Name:      "probe_duration_seconds",
			Help:      "[ALPHA] Duration in seconds for a probe response.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"probe_type", "container", "pod", "namespace"}),
	}
	var err error
	m.results, err = register(reg, m.results)
	if err != nil {
		return nil, err
	}
	m.duration, err = register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the collector already
// registered under its name (a second Manager on the same registry counts
// into the same series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, err
	}
	return c, nil
}
