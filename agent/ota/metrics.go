package ota

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podboot/podboot/agent/ota/trial"
)

// Metrics are the controller's Prometheus series; a nil *Metrics records
// nothing.
type Metrics struct {
	generation, trying prometheus.Gauge
	commits, rollbacks prometheus.Counter
	refusals           *prometheus.CounterVec
}

// NewMetrics registers the OTA series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		generation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "podboot_ota_generation", Help: "The committed OTA generation (0: none)."}),
		trying:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "podboot_ota_trying_generation", Help: "The OTA generation on trial (0: none)."}),
		commits:    prometheus.NewCounter(prometheus.CounterOpts{Name: "podboot_ota_commits_total", Help: "OTA generations committed by the health gate."}),
		rollbacks:  prometheus.NewCounter(prometheus.CounterOpts{Name: "podboot_ota_rollbacks_total", Help: "OTA generations rolled back (health gate, attempts, operator)."}),
		refusals:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "podboot_ota_refusals_total", Help: "OTA bundles refused, by reason."}, []string{"reason"}),
	}
	reg.MustRegister(m.generation, m.trying, m.commits, m.rollbacks, m.refusals)
	return m
}

func (m *Metrics) set(st trial.State) {
	if m == nil {
		return
	}
	m.generation.Set(float64(st.Committed))
	m.trying.Set(float64(st.Trying))
}

func (m *Metrics) committed(st trial.State) {
	if m == nil {
		return
	}
	m.commits.Inc()
	m.set(st)
}

func (m *Metrics) rolledBack(st trial.State) {
	if m == nil {
		return
	}
	m.rollbacks.Inc()
	m.set(st)
}

func (m *Metrics) refused(reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(reason).Inc()
}
