package podbench

import (
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown renders the results as the tables of bench/README.md's
// resources section.
func (r *ResourcesResults) WriteMarkdown(w io.Writer, m Machine) {
	fmt.Fprintf(w, "Measured %s on %d cores, %s, kernel %s; 1-minute load average %.2f at the start, %.2f at the end.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), m.CPUs, m.OS, m.Kernel, r.Loadavg[0], r.Loadavg[1])
	if len(r.CPU) > 0 {
		fmt.Fprintln(w, "| cpu limit | windows | median share / limit | min | max | cores used (each window) | periods throttled (median) |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- | ---: |")
		for _, c := range r.CPU {
			shares := make([]string, len(c.Shares))
			for i, s := range c.Shares {
				shares[i] = fmt.Sprintf("%.4f", s)
			}
			throttled := "-"
			if len(c.Throttled) > 0 {
				throttled = fmt.Sprintf("%.0f %%", 100*SummarizeRatios(c.Throttled).Median)
			}
			fmt.Fprintf(w, "| %s | %d | %.3f | %.3f | %.3f | %s | %s |\n", c.Limit, c.Ratios.N, c.Ratios.Median, c.Ratios.Min, c.Ratios.Max, strings.Join(shares, " "), throttled)
		}
		fmt.Fprintln(w)
	}
	if len(r.OOM) > 0 {
		fmt.Fprintln(w, "| OOM: start mark → OOMKilled in the watch | n | p50 | p90 | max |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
		fmt.Fprintf(w, "| | %d | %s | %s | %s |\n\n", len(r.OOM), FormatDuration(r.OOMP50), FormatDuration(r.OOMP90), FormatDuration(r.OOMMax))
		all := make([]string, len(r.OOM))
		for i, ms := range r.OOM {
			all[i] = fmt.Sprintf("%.0f", ms)
		}
		fmt.Fprintf(w, "Each run, ms: %s\n\n", strings.Join(all, " "))
	}
	if r.MetricsPods > 0 {
		fmt.Fprintf(w, "| podagent CPU, %d pods running | window | %% of one core |\n", r.MetricsPods)
		fmt.Fprintln(w, "| --- | ---: | ---: |")
		fmt.Fprintf(w, "| no scraping | %.0f s | %.2f |\n", r.QuietWindow.Seconds(), r.QuietCPU)
		fmt.Fprintf(w, "| /metrics + /metrics/cadvisor every %s (%d scrapes) | %.0f s | %.2f |\n", r.ScrapeEvery, r.Scrapes, r.ScrapedWindow.Seconds(), r.ScrapedCPU)
		fmt.Fprintf(w, "| difference | | %.2f |\n\n", r.ScrapedCPU-r.QuietCPU)
		fmt.Fprintf(w, "Agent CPU per scrape of both endpoints: %.1f ms. Response sizes: /metrics/cadvisor %d bytes, /metrics %d bytes; /metrics/cadvisor answered in %s (median).\n\n",
			float64(r.ScrapeCPU.Microseconds())/1000, r.CadvisorBytes, r.MetricsBytes, FormatDuration(r.CadvisorLatency))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}
