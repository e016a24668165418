package podagent

import (
	"log/slog"

	"github.com/podboot/podboot/agent/metrics"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/store"
)

// newMetrics measures the node from /proc and the containers from the
// runtime's cgroups, for /metrics and kubectl top. A failure leaves the
// API without metrics rather than the board without pods.
func newMetrics(nodeName string, st *store.Store, stats runtime.StatsReader, log *slog.Logger) *metrics.Metrics {
	m, err := metrics.New(metrics.Config{NodeName: nodeName, Stats: stats, Store: st, Log: log})
	if err != nil {
		log.Error("metrics off", "err", err)
		return nil
	}
	return m
}
