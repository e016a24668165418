// Package metrics measures the board and its containers for the API: a
// Prometheus registry in cAdvisor's and node_exporter's names for
// /metrics and /metrics/cadvisor, and the resource usage metrics.k8s.io
// serves to `kubectl top` (NodeMetrics and PodMetrics with CPU rates over
// a window, as metrics-server computes them).
package metrics
