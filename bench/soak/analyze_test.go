package soak

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// series makes n samples every 10 s of one metric, with values f(i).
func series(name string, n int, f func(i int) float64) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{At: time.Duration(i) * 10 * time.Second, Values: map[string]float64{name: f(i)}}
	}
	return out
}

// noise is a deterministic wobble in [-1, 1] (no math/rand: the cases
// must not change from run to run).
func noise(i int) float64 { return math.Sin(float64(i)*2.3) * math.Cos(float64(i)*0.7) }

func TestAnalyze(t *testing.T) {
	mounts := Metric{Name: Mounts, Unit: "count", Abs: 8, Rel: 0.1}
	rss := Metric{Name: AgentRSS, Unit: "bytes", Abs: 16 * mb, Rel: 0.3}
	tests := []struct {
		name    string
		metric  Metric
		samples []Sample
		warmUp  time.Duration
		want    bool // growing
	}{
		{"flat", mounts, series(Mounts, 30, func(int) float64 { return 60 }), 0, false},
		// A crash-looping pod's container comes and goes between samples.
		{"flat with churn", mounts, series(Mounts, 30, func(i int) float64 { return 60 + float64(i%4) }), 0, false},
		// One replacement's mounts each minute, never released.
		{"leak of mounts", mounts, series(Mounts, 30, func(i int) float64 { return 60 + float64(i) }), 0, true},
		{"slow leak within the tolerance", mounts, series(Mounts, 30, func(i int) float64 { return 60 + float64(i/6) }), 0, false},
		// Growth during the warm-up (the heap, the image's snapshot) is
		// what warm-up is for.
		{"growth during the warm-up only", rss, series(AgentRSS, 60, func(i int) float64 {
			return 30*mb + float64(min(i, 45))*4*mb + noise(i)*2*mb
		}), 460 * time.Second, false},
		{"the same growth judged without a warm-up", rss, series(AgentRSS, 60, func(i int) float64 {
			return 30*mb + float64(min(i, 45))*4*mb + noise(i)*2*mb
		}), 0, true},
		// Growth that levels off within the first third is bounded.
		{"early growth that levels off", rss, series(AgentRSS, 40, func(i int) float64 {
			return 30*mb + float64(min(i, 10))*4*mb + noise(i)*2*mb
		}), 0, false},
		// A Go heap breathing by a third between collections.
		{"noisy heap", rss, series(AgentRSS, 30, func(i int) float64 { return 40*mb + noise(i)*12*mb }), 0, false},
		{"leaking heap", rss, series(AgentRSS, 30, func(i int) float64 { return 40*mb + float64(i)*2*mb + noise(i)*4*mb }), 0, true},
		// One outlier at the very end: the median of the last third
		// does not move.
		{"spike at the end", rss, series(AgentRSS, 30, func(i int) float64 {
			if i == 29 {
				return 400 * mb
			}
			return 40 * mb
		}), 0, false},
		// A cache filled once at a third of the way and kept: the level
		// rose, the trend did not.
		{"one step that stays", mounts, series(Mounts, 30, func(i int) float64 {
			if i >= 8 {
				return 80
			}
			return 60
		}), 0, false},
		// Logs rotating at 1 MiB: a sawtooth, flat on average.
		{"sawtooth", Metric{Name: LogBytes, Unit: "bytes", Abs: 12 * mb, Rel: 0.3}, series(LogBytes, 30, func(i int) float64 {
			return 4*mb + float64(i%6)*mb
		}), 0, false},
		{"logs never removed", Metric{Name: LogBytes, Unit: "bytes", Abs: 12 * mb, Rel: 0.3}, series(LogBytes, 30, func(i int) float64 {
			return 4*mb + float64(i)*mb
		}), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Analyze(tc.samples, tc.warmUp, []Metric{tc.metric})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("Analyze returned %d verdicts, want 1", len(got))
			}
			if got[0].Growing != tc.want {
				t.Errorf("Growing = %t, want %t: %+v", got[0].Growing, tc.want, got[0])
			}
			if got[0].Growing && !strings.Contains(got[0].Why, tc.metric.Name+" grows") {
				t.Errorf("Why = %q, want it to name %s", got[0].Why, tc.metric.Name)
			}
		})
	}
}

func TestAnalyzeTooFewSamples(t *testing.T) {
	samples := series(Mounts, 10, func(int) float64 { return 1 })
	if _, err := Analyze(samples, 60*time.Second, []Metric{{Name: Mounts}}); err == nil || !strings.Contains(err.Error(), "4 samples after the 1m0s warm-up") {
		t.Errorf("Analyze with 4 samples after the warm-up: err = %v, want one that counts them", err)
	}
	// A metric missing from the samples is an error, not a pass.
	if _, err := Analyze(samples, 0, []Metric{{Name: Veths}}); err == nil || !strings.Contains(err.Error(), "veths has 0 samples") {
		t.Errorf("Analyze of a metric never sampled: err = %v, want one that names it", err)
	}
}

func TestAnalyzeSkipsContext(t *testing.T) {
	samples := series(Restarts, 30, func(i int) float64 { return float64(i * 10) })
	got, err := Analyze(samples, 0, []Metric{{Name: Restarts, ContextOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Verdict(nil), got); diff != "" {
		t.Errorf("context-only metrics are judged (-want +got):\n%s", diff)
	}
}

func TestTheilSen(t *testing.T) {
	tests := []struct {
		name   string
		ts, ys []float64
		want   float64
	}{
		{"line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2},
		{"flat", []float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, 0},
		{"one outlier", []float64{0, 1, 2, 3, 4}, []float64{0, 1, 100, 3, 4}, 1},
		{"one point", []float64{0}, []float64{3}, 0},
	}
	for _, tc := range tests {
		if got := theilSen(tc.ts, tc.ys); got != tc.want {
			t.Errorf("%s: theilSen = %v, want %v", tc.name, got, tc.want)
		}
	}
}
