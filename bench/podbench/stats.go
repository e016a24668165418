package podbench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary condenses latency samples.
type Summary struct {
	N             int
	P50, P99, Max time.Duration
}

// Summarize returns the nearest-rank percentiles of samples: P99 of fewer
// than 100 samples is their maximum. Summarize of no samples is the zero
// Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return Summary{
		N:   len(sorted),
		P50: nearestRank(sorted, 50),
		P99: nearestRank(sorted, 99),
		Max: sorted[len(sorted)-1],
	}
}

// nearestRank is the smallest sample with at least p percent of the
// samples at or below it.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", s.N, FormatDuration(s.P50), FormatDuration(s.P99), FormatDuration(s.Max))
}

// FormatDuration prints a latency in milliseconds with one decimal below
// 10 ms and none above, the precision the figures deserve.
func FormatDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.0f ms", ms)
}
