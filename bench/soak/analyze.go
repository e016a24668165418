package soak

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Metric is one sampled series and how much it may move after the
// warm-up before it counts as growth. The tolerance is generous on
// purpose: the machines this runs on are 2 shared cores, a Go heap
// breathes by tens of percent between collections, and a crash-looping
// pod's container comes and goes between two samples. A leak is what is
// left: growth that continues for as long as the churn does.
type Metric struct {
	Name string
	Unit string // "bytes" or "count"
	Help string
	// Abs and Rel: the series may rise by max(Abs, Rel × the early
	// ceiling) above the early ceiling.
	Abs, Rel float64
	// Context-only metrics are reported but never judged (the pods'
	// phases and restarts: they are the churn, not a resource).
	ContextOnly bool
}

const mb = 1 << 20

// The series the soak samples, by name.
const (
	AgentRSS        = "agent_rss_bytes"
	AgentGoroutines = "agent_goroutines"
	AgentThreads    = "agent_threads"
	AgentFDs        = "agent_fds"
	ContainerdRSS   = "containerd_rss_bytes"
	ContainerdFDs   = "containerd_fds"
	Shims           = "shims"
	StateTmpfs      = "state_tmpfs_bytes"
	LogBytes        = "container_log_bytes"
	LogFiles        = "container_log_files"
	Mounts          = "mounts"
	Cgroups         = "cgroups"
	Veths           = "veths"
	PodsRunning     = "pods_running"
	Restarts        = "restarts_total"
	AgentWritten    = "agent_wchar_bytes"
	DaemonWritten   = "containerd_wchar_bytes"
)

// Metrics are the series in report order.
func Metrics() []Metric {
	return []Metric{
		{Name: AgentRSS, Unit: "bytes", Help: "podagent's resident set (VmRSS)", Abs: 16 * mb, Rel: 0.3},
		{Name: AgentGoroutines, Unit: "count", Help: "podagent's goroutines (go_goroutines on its /metrics)", Abs: 40, Rel: 0.3},
		{Name: AgentThreads, Unit: "count", Help: "podagent's OS threads", Abs: 6, Rel: 0.3},
		{Name: AgentFDs, Unit: "count", Help: "podagent's open file descriptors", Abs: 24, Rel: 0.3},
		{Name: ContainerdRSS, Unit: "bytes", Help: "containerd's resident set (VmRSS)", Abs: 16 * mb, Rel: 0.3},
		{Name: ContainerdFDs, Unit: "count", Help: "containerd's open file descriptors", Abs: 24, Rel: 0.3},
		{Name: Shims, Unit: "count", Help: "containerd-shim-runc-v2 processes of the node", Abs: 3, Rel: 0.1},
		{Name: StateTmpfs, Unit: "bytes", Help: "used space of the tmpfs holding the state directory", Abs: 24 * mb, Rel: 0.3},
		{Name: LogBytes, Unit: "bytes", Help: "container logs under the state directory (pods/)", Abs: 12 * mb, Rel: 0.3},
		{Name: LogFiles, Unit: "count", Help: "container log files under the state directory (pods/): a restart's or a replaced pod's left behind shows here first", Abs: 8, Rel: 0.1},
		{Name: Mounts, Unit: "count", Help: "mounts under the state directory (host mount namespace)", Abs: 8, Rel: 0.1},
		{Name: Cgroups, Unit: "count", Help: "cgroup directories under the agent's cgroup root, all hierarchies", Abs: 12, Rel: 0.1},
		{Name: Veths, Unit: "count", Help: "veth links in the node's network namespace", Abs: 3, Rel: 0.1},
		{Name: PodsRunning, Unit: "count", Help: "pods in phase Running (context)", ContextOnly: true},
		{Name: Restarts, Unit: "count", Help: "container restarts, all pods (context)", ContextOnly: true},
		{Name: AgentWritten, Unit: "bytes", Help: "podagent's bytes written by syscalls, cumulative (wchar of /proc/PID/io; context)", ContextOnly: true},
		{Name: DaemonWritten, Unit: "bytes", Help: "containerd's bytes written by syscalls, cumulative (context)", ContextOnly: true},
	}
}

// Sample is one reading of every series, At after the node was ready.
type Sample struct {
	At     time.Duration      `json:"at"`
	Values map[string]float64 `json:"values"`
}

// Verdict is Analyze's judgement of one series.
type Verdict struct {
	Metric string `json:"metric"`
	// N is the number of samples after the warm-up.
	N int `json:"n"`
	// First and Last are the first sample after the warm-up and the last.
	First, Last float64
	// Min and Max are over the samples after the warm-up.
	Min, Max float64
	// EarlyMax is the ceiling of the first third after the warm-up,
	// LateMedian the median of the last third, and Bound the level
	// LateMedian may reach: EarlyMax plus the metric's tolerance.
	EarlyMax, LateMedian, Bound float64
	// SlopePerHour is the Theil-Sen slope (the median of every pair's
	// slope, so a few outliers cannot make it), per hour; Rise is that
	// slope over the span of the samples after the warm-up.
	SlopePerHour, Rise float64
	Growing            bool
	Why                string
}

// minSamples is the fewest samples after the warm-up that thirds can be
// made of.
const minSamples = 6

// Analyze judges every metric that is not ContextOnly over the samples
// taken after warmUp. A series grows without bound when both
//
//   - its level rose: the median of the last third is above the ceiling
//     of the first third plus the tolerance (a median, so one spike at
//     the end does not count; a ceiling, so the early noise is allowed);
//   - and it rose as a trend: the Theil-Sen slope over all the samples
//     after the warm-up, times their span, is also above the tolerance.
//     The median of the pairwise slopes ignores a step that happened
//     once and stayed (a cache filled at minute three): at most half of
//     the pairs straddle a step, so their steep slopes cannot be the
//     median. A leak makes every pair's slope positive.
//
// Neither looks at time of day or at how long anything took.
func Analyze(samples []Sample, warmUp time.Duration, metrics []Metric) ([]Verdict, error) {
	var after []Sample
	for _, s := range samples {
		if s.At >= warmUp {
			after = append(after, s)
		}
	}
	if len(after) < minSamples {
		return nil, fmt.Errorf("analyze soak: %d samples after the %s warm-up, want at least %d", len(after), warmUp, minSamples)
	}
	var out []Verdict
	for _, m := range metrics {
		if m.ContextOnly {
			continue
		}
		ts := make([]float64, 0, len(after))
		ys := make([]float64, 0, len(after))
		for _, s := range after {
			v, ok := s.Values[m.Name]
			if !ok {
				continue
			}
			ts = append(ts, s.At.Hours())
			ys = append(ys, v)
		}
		if len(ys) < minSamples {
			return nil, fmt.Errorf("analyze soak: %s has %d samples after the warm-up, want at least %d", m.Name, len(ys), minSamples)
		}
		out = append(out, judge(m, ts, ys))
	}
	return out, nil
}

func judge(m Metric, ts, ys []float64) Verdict {
	n := len(ys)
	third := n / 3
	early, late := ys[:third], ys[n-third:]
	v := Verdict{
		Metric: m.Name, N: n, First: ys[0], Last: ys[n-1],
		Min: slices.Min(ys), Max: slices.Max(ys),
		EarlyMax: slices.Max(early), LateMedian: median(late),
	}
	tol := max(m.Abs, m.Rel*math.Abs(v.EarlyMax))
	v.Bound = v.EarlyMax + tol
	slope := theilSen(ts, ys)
	v.SlopePerHour = slope
	v.Rise = slope * (ts[n-1] - ts[0])
	v.Growing = v.LateMedian > v.Bound && v.Rise > tol
	if v.Growing {
		v.Why = fmt.Sprintf("%s grows: the last third's median %s is above the first third's ceiling %s plus the tolerance %s, and the trend rose by %s over the samples",
			m.Name, Format(m, v.LateMedian), Format(m, v.EarlyMax), Format(m, tol), Format(m, v.Rise))
	}
	return v
}

// theilSen is the median of the slopes of every pair of points with
// distinct times: robust to up to 29 % of the points being outliers.
func theilSen(ts, ys []float64) float64 {
	var slopes []float64
	for i := range ys {
		for j := i + 1; j < len(ys); j++ {
			if dt := ts[j] - ts[i]; dt != 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	return median(slopes)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Format renders a value of m for people: MB for bytes (10^6, as the
// rest of bench/README.md), a plain number for counts.
func Format(m Metric, v float64) string {
	if m.Unit == "bytes" {
		return fmt.Sprintf("%.1f MB", v/1e6)
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
