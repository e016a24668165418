package soak

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes the report as the tables bench/README.md quotes: a
// line saying what ran, each judged series after the warm-up, and the
// samples themselves (at most 13 columns, evenly spread, the first and
// the last included).
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	m := r.Mix
	fmt.Fprintf(&b, "%d pods (%d steady, %d with an exec readiness probe, %d crash-looping, %d replaced by a manifest edit every %s, %d logging 1 MiB/min); "+
		"sampled every %s for %s after every pod had started; %d manifest edits; judged after a %s warm-up.\n\n",
		m.Total(), m.Steady, m.Probed, m.CrashLoop, m.Replaced, r.EditEvery, m.Logger,
		r.Interval, r.Duration, r.Edits, r.WarmUp)
	metrics := map[string]Metric{}
	for _, mt := range Metrics() {
		metrics[mt.Name] = mt
	}
	if len(r.Verdicts) > 0 {
		b.WriteString("| series | after warm-up | min | max | end | trend per hour | grows? |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, v := range r.Verdicts {
			mt := metrics[v.Metric]
			verdict := "flat"
			if v.Growing {
				verdict = "**grows**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", v.Metric,
				Format(mt, v.First), Format(mt, v.Min), Format(mt, v.Max), Format(mt, v.Last), signed(mt, v.SlopePerHour), verdict)
		}
		b.WriteString("\n")
	}
	if len(r.Samples) > 0 {
		cols := spread(len(r.Samples), 13)
		b.WriteString("| series |")
		for _, i := range cols {
			fmt.Fprintf(&b, " %s |", minutes(r.Samples[i].At))
		}
		b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(cols)) + "\n")
		for _, mt := range Metrics() {
			fmt.Fprintf(&b, "| %s |", mt.Name)
			for _, i := range cols {
				if v, ok := r.Samples[i].Values[mt.Name]; ok {
					fmt.Fprintf(&b, " %s |", Format(mt, v))
				} else {
					b.WriteString(" |")
				}
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// spread picks at most k indexes of n, evenly, with the first and last.
func spread(n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, k)
	for i := range out {
		out[i] = i * (n - 1) / (k - 1)
	}
	return out
}

func minutes(d time.Duration) string {
	return fmt.Sprintf("%.1f min", d.Minutes())
}

func signed(m Metric, v float64) string {
	s := Format(m, v)
	if v > 0 {
		s = "+" + s
	}
	return s
}
