package metrics

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/store"
)

// collectTimeout bounds one scrape's reading of the runtime.
const collectTimeout = 10 * time.Second

// containerLabels are kubelet's /metrics/cadvisor labels.
var containerLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

// cadvisorCollector exposes the running containers in cAdvisor's names
// (cadvisor/metrics/prometheus.go).
type cadvisorCollector struct {
	m                                           *Metrics
	cpu, mem, workingSet, rss, oomEvents, start *prometheus.Desc
}

func newCadvisorCollector(m *Metrics) *cadvisorCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, containerLabels, nil)
	}
	return &cadvisorCollector{
		m:          m,
		cpu:        d("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds."),
		mem:        d("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed"),
		workingSet: d("container_memory_working_set_bytes", "Current working set in bytes."),
		rss:        d("container_memory_rss", "Size of RSS in bytes."),
		oomEvents:  d("container_oom_events_total", "Count of out of memory events observed for the container"),
		start:      d("container_start_time_seconds", "Start time of the container since unix epoch in seconds."),
	}
}

func (c *cadvisorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.mem, c.workingSet, c.rss, c.oomEvents, c.start} {
		ch <- d
	}
}

func (c *cadvisorCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	stats, err := c.m.stats.ContainerStats(ctx)
	if err != nil {
		c.m.log.Error("metrics: container stats", "err", err)
		ch <- prometheus.NewInvalidMetric(c.cpu, err)
		return
	}
	for _, s := range stats {
		// cAdvisor's id is the cgroup; containerd's runc puts a container
		// in /<namespace>/<id>, which the runtime does not report, so id
		// and name carry the container ID (name is cAdvisor's alias).
		labels := []string{s.Name, s.ID, s.Image, s.ID, s.Pod.Namespace, s.Pod.Name}
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, float64(s.CPUUsageNanoseconds)/1e9, labels...)
		ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(s.MemoryUsageBytes), labels...)
		ch <- prometheus.MustNewConstMetric(c.workingSet, prometheus.GaugeValue, float64(s.MemoryWorkingSetBytes), labels...)
		ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(s.MemoryRSSBytes), labels...)
		ch <- prometheus.MustNewConstMetric(c.oomEvents, prometheus.CounterValue, float64(s.OOMEvents), labels...)
		if !s.StartedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(s.StartedAt.UnixNano())/1e9, labels...)
		}
	}
}

// nodeCollector exposes /proc in node_exporter's names.
type nodeCollector struct {
	m                       *Metrics
	cpu, memTotal, memAvail *prometheus.Desc
}

func newNodeCollector(m *Metrics) *nodeCollector {
	return &nodeCollector{
		m:        m,
		cpu:      prometheus.NewDesc("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", []string{"cpu", "mode"}, nil),
		memTotal: prometheus.NewDesc("node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", nil, nil),
		memAvail: prometheus.NewDesc("node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes.", nil, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.cpu
	ch <- c.memTotal
	ch <- c.memAvail
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n, err := c.m.readNode()
	if err != nil {
		c.m.log.Error("metrics: node", "err", err)
		ch <- prometheus.NewInvalidMetric(c.cpu, err)
		return
	}
	cpus := make([]int64, 0, len(n.perCPU))
	for cpu := range n.perCPU {
		cpus = append(cpus, cpu)
	}
	slices.Sort(cpus)
	for _, cpu := range cpus {
		for _, m := range cpuModes(n.perCPU[cpu]) {
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, m.seconds, cpuLabel(cpu), m.mode)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.memTotal, prometheus.GaugeValue, float64(n.memTotal))
	ch <- prometheus.MustNewConstMetric(c.memAvail, prometheus.GaugeValue, float64(n.memAvail))
}

// podsCollector counts the store's pods by phase.
type podsCollector struct {
	st   *store.Store
	pods *prometheus.Desc
}

func newPodsCollector(st *store.Store) *podsCollector {
	return &podsCollector{st: st, pods: prometheus.NewDesc("podboot_pods", "Number of pods the agent runs, by phase.", []string{"phase"}, nil)}
}

func (c *podsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pods }

// phases are the five pod phases, each reported even at zero so that a
// query for one always finds a series.
var phases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

func (c *podsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[corev1.PodPhase]int{}
	objs, _ := c.st.List(store.KindPod, "")
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			phase := p.Status.Phase
			if phase == "" {
				phase = corev1.PodPending
			}
			counts[phase]++
		}
	}
	for _, phase := range phases {
		ch <- prometheus.MustNewConstMetric(c.pods, prometheus.GaugeValue, float64(counts[phase]), string(phase))
	}
}
