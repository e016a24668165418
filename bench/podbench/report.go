package podbench

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPUs   int
	OS     string // "Debian 12.x"
	Kernel string // uname -r
}

// Targets are the goals the figures are read against.
const (
	TargetLatencyRatio  = 0.5 // podboot p50 / podman p50
	TargetP99           = time.Second
	TargetAgentPSS      = 25e6 // bytes: MB are 10^6 bytes here
	TargetStackPSS10    = 100e6
	TargetAgentCPUPct   = 1.0
	stackTargetPodCount = 10
)

// WriteMarkdown renders the results as the tables of bench/README.md.
func (r *Results) WriteMarkdown(w io.Writer, m Machine) {
	fmt.Fprintf(w, "Measured %s on %d cores, %s, kernel %s.\n\n", r.Started.UTC().Format("2006-01-02"), m.CPUs, m.OS, m.Kernel)

	fmt.Fprintln(w, "| pod start (2 containers each) | podboot p50 | podboot p99 | podman kube play p50 | podman p99 | p50 ratio podboot / podman | target |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	row := func(what string, pb, pm Summary) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | p50 ratio < %.1f, p99 < %s: %s |\n",
			what, cell(pb, pb.P50), cell(pb, pb.P99), cell(pm, pm.P50), cell(pm, pm.P99), ratio(pb, pm),
			TargetLatencyRatio, TargetP99, verdict(pb, pm))
	}
	row(fmt.Sprintf("one at a time (%d pods)", r.Sequential), r.PodbootSeq, r.PodmanSeq)
	row(fmt.Sprintf("at once (%d pods)", r.Burst), r.PodbootBurst, r.PodmanBurst)
	fmt.Fprintln(w)
	if seq, burst := r.SeenSummary("podboot-seq"), r.SeenSummary("podboot-burst"); seq.N+burst.N > 0 {
		fmt.Fprintf(w, "podboot, manifest renamed → pod first listed by the API (in any phase): p50 %s one at a time, %s at once.\n\n", cell(seq, seq.P50), cell(burst, burst.P50))
	}

	fmt.Fprintln(w, "| running pods | podagent PSS (threads) | containerd PSS | shims PSS (count) | whole stack PSS | target |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- |")
	counts := make([]int, 0, len(r.Memory))
	for n := range r.Memory {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	if len(counts) == 0 {
		fmt.Fprintln(w, "| — | not measured | | | | |")
	}
	for _, n := range counts {
		mem := r.Memory[n]
		target := fmt.Sprintf("podagent < %.0f MB: %s", TargetAgentPSS/1e6, yes(mem.Agent < TargetAgentPSS))
		if n == stackTargetPodCount {
			target += fmt.Sprintf("; stack < %.0f MB: %s", TargetStackPSS10/1e6, yes(mem.Total() < TargetStackPSS10))
		}
		fmt.Fprintf(w, "| %d | %s (%d) | %s | %s (%d) | %s | %s |\n", n, mib(mem.Agent), mem.AgentThreads, mib(mem.Containerd), mib(mem.Shims), mem.ShimCount, mib(mem.Total()), target)
	}
	fmt.Fprintln(w)

	if r.AgentCPU >= 0 {
		fmt.Fprintf(w, "podagent CPU with %d idle pods over %s: %.2f %% of one core (target < %.0f %%: %s).\n",
			r.CPUPods, r.CPUWindow, r.AgentCPU, TargetAgentCPUPct, yes(r.AgentCPU < TargetAgentCPUPct))
	} else {
		fmt.Fprintln(w, "podagent CPU: not measured.")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
}

func cell(s Summary, d time.Duration) string {
	if s.N == 0 {
		return "not measured"
	}
	return FormatDuration(d)
}

func ratio(pb, pm Summary) string {
	if pb.N == 0 || pm.N == 0 || pm.P50 == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(pb.P50)/float64(pm.P50))
}

func verdict(pb, pm Summary) string {
	if pb.N == 0 {
		return "not measured"
	}
	if pm.N == 0 {
		return "p99 " + yes(pb.P99 < TargetP99) + ", ratio not measured"
	}
	return yes(float64(pb.P50) < TargetLatencyRatio*float64(pm.P50) && pb.P99 < TargetP99)
}

func yes(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
