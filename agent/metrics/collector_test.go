package metrics

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestExposition compares /metrics' families with kubelet's cAdvisor
// names and labels (cadvisor/metrics/prometheus.go) and node_exporter's.
func TestExposition(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{"containers", []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_oom_events_total", "container_start_time_seconds"}, `
# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",id="c0001",image="busybox:1.36",name="c0001",namespace="default",pod="web"} 1.5
container_cpu_usage_seconds_total{container="dns",id="c0003",image="busybox:1.36",name="c0003",namespace="kube-system",pod="dns"} 0
container_cpu_usage_seconds_total{container="side",id="c0002",image="busybox:1.36",name="c0002",namespace="default",pod="web"} 0
# HELP container_memory_working_set_bytes Current working set in bytes.
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",id="c0001",image="busybox:1.36",name="c0001",namespace="default",pod="web"} 4.194304e+06
container_memory_working_set_bytes{container="dns",id="c0003",image="busybox:1.36",name="c0003",namespace="kube-system",pod="dns"} 0
container_memory_working_set_bytes{container="side",id="c0002",image="busybox:1.36",name="c0002",namespace="default",pod="web"} 0
# HELP container_oom_events_total Count of out of memory events observed for the container
# TYPE container_oom_events_total counter
container_oom_events_total{container="app",id="c0001",image="busybox:1.36",name="c0001",namespace="default",pod="web"} 1
container_oom_events_total{container="dns",id="c0003",image="busybox:1.36",name="c0003",namespace="kube-system",pod="dns"} 0
container_oom_events_total{container="side",id="c0002",image="busybox:1.36",name="c0002",namespace="default",pod="web"} 0
# HELP container_start_time_seconds Start time of the container since unix epoch in seconds.
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",id="c0001",image="busybox:1.36",name="c0001",namespace="default",pod="web"} 9.466848e+08
container_start_time_seconds{container="dns",id="c0003",image="busybox:1.36",name="c0003",namespace="kube-system",pod="dns"} 9.466848e+08
container_start_time_seconds{container="side",id="c0002",image="busybox:1.36",name="c0002",namespace="default",pod="web"} 9.466848e+08
`},
		{"container memory", []string{"container_memory_usage_bytes", "container_memory_rss"}, `
# HELP container_memory_rss Size of RSS in bytes.
# TYPE container_memory_rss gauge
container_memory_rss{container="app",id="c0001",image="busybox:1.36",name="c0001",namespace="default",pod="web"} 2.097152e+06
container_memory_rss{container="dns",id="c0003",image="busybox:1.36",name="c0003",namespace="kube-system",pod="dns"} 0
container_memory_rss{container="side",id="c0002",image="busybox:1.36",name="c0002",namespace="default",pod="web"} 0
# HELP container_memory_usage_bytes Current memory usage in bytes, including all memory regardless of when it was accessed
# TYPE container_memory_usage_bytes gauge
container_memory_usage_bytes{container="app",id="c0001",image="busybox:1.36",name="c0001",namespace="default",pod="web"} 5.24288e+06
container_memory_usage_bytes{container="dns",id="c0003",image="busybox:1.36",name="c0003",namespace="kube-system",pod="dns"} 0
container_memory_usage_bytes{container="side",id="c0002",image="busybox:1.36",name="c0002",namespace="default",pod="web"} 0
`},
		{"node", []string{"node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes", "node_cpu_seconds_total"}, `
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 39
node_cpu_seconds_total{cpu="0",mode="iowait"} 0.3
node_cpu_seconds_total{cpu="0",mode="irq"} 0.05
node_cpu_seconds_total{cpu="0",mode="nice"} 0.1
node_cpu_seconds_total{cpu="0",mode="softirq"} 0.1
node_cpu_seconds_total{cpu="0",mode="steal"} 0.02
node_cpu_seconds_total{cpu="0",mode="system"} 2
node_cpu_seconds_total{cpu="0",mode="user"} 6
node_cpu_seconds_total{cpu="1",mode="idle"} 41
node_cpu_seconds_total{cpu="1",mode="iowait"} 0.2
node_cpu_seconds_total{cpu="1",mode="irq"} 0
node_cpu_seconds_total{cpu="1",mode="nice"} 0
node_cpu_seconds_total{cpu="1",mode="softirq"} 0.1
node_cpu_seconds_total{cpu="1",mode="steal"} 0.01
node_cpu_seconds_total{cpu="1",mode="system"} 2
node_cpu_seconds_total{cpu="1",mode="user"} 4
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 3.072e+09
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 4.096e+09
`},
		{"pods by phase", []string{"podboot_pods"}, `
# HELP podboot_pods Number of pods the agent runs, by phase.
# TYPE podboot_pods gauge
podboot_pods{phase="Failed"} 0
podboot_pods{phase="Pending"} 1
podboot_pods{phase="Running"} 2
podboot_pods{phase="Succeeded"} 1
podboot_pods{phase="Unknown"} 0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				f.setUsage(t, "app", 1.5, 4<<20)
				if err := testutil.GatherAndCompare(f.m.Registry(), strings.NewReader(tt.want), tt.names...); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

// TestCadvisorRegistryHasContainersOnly: /metrics/cadvisor is kubelet's
// container endpoint, without the node's or the agent's series.
func TestCadvisorRegistryHasContainersOnly(t *testing.T) {
	f := newFixture(t)
	families, err := f.m.cadvisor.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if !strings.HasPrefix(mf.GetName(), "container_") {
			t.Errorf("/metrics/cadvisor has %s", mf.GetName())
		}
	}
	if len(families) != 6 {
		t.Errorf("/metrics/cadvisor has %d families, want the 6 container ones", len(families))
	}
}

// TestReconcileDuration: each observed sync lands in the histogram's
// buckets, in seconds.
func TestReconcileDuration(t *testing.T) {
	f := newFixture(t)
	f.m.ObserveSync(3 * time.Millisecond)
	f.m.ObserveSync(1500 * time.Millisecond)
	want := `
# HELP podboot_reconcile_duration_seconds Duration in seconds of one pod sync: observe the runtime, act, publish the status.
# TYPE podboot_reconcile_duration_seconds histogram
podboot_reconcile_duration_seconds_bucket{le="0.001"} 0
podboot_reconcile_duration_seconds_bucket{le="0.002"} 0
podboot_reconcile_duration_seconds_bucket{le="0.004"} 1
podboot_reconcile_duration_seconds_bucket{le="0.008"} 1
podboot_reconcile_duration_seconds_bucket{le="0.016"} 1
podboot_reconcile_duration_seconds_bucket{le="0.032"} 1
podboot_reconcile_duration_seconds_bucket{le="0.064"} 1
podboot_reconcile_duration_seconds_bucket{le="0.128"} 1
podboot_reconcile_duration_seconds_bucket{le="0.256"} 1
podboot_reconcile_duration_seconds_bucket{le="0.512"} 1
podboot_reconcile_duration_seconds_bucket{le="1.024"} 1
podboot_reconcile_duration_seconds_bucket{le="2.048"} 2
podboot_reconcile_duration_seconds_bucket{le="4.096"} 2
podboot_reconcile_duration_seconds_bucket{le="8.192"} 2
podboot_reconcile_duration_seconds_bucket{le="16.384"} 2
podboot_reconcile_duration_seconds_bucket{le="+Inf"} 2
podboot_reconcile_duration_seconds_sum 1.503
podboot_reconcile_duration_seconds_count 2
`
	if err := testutil.GatherAndCompare(f.m.Registry(), strings.NewReader(want), "podboot_reconcile_duration_seconds"); err != nil {
		t.Error(err)
	}
}
