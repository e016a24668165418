package source

import (
	"testing"
	"time"
)

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		rnd  float64
		want time.Duration
	}{
		{0, 270 * time.Second},
		{0.25, 285 * time.Second},
		{0.5, 300 * time.Second},
		{0.75, 315 * time.Second},
		{0.999999, 330*time.Second - 60*time.Microsecond},
		{-1, 270 * time.Second}, // out of range: clamped
		{2, 330 * time.Second},
	} {
		if got := Jitter(5*time.Minute, func() float64 { return tc.rnd }); got != tc.want {
			t.Errorf("Jitter(5m, %v) = %v, want %v", tc.rnd, got, tc.want)
		}
	}
	for range 1000 {
		if got := Jitter(time.Minute, nil); got < 54*time.Second || got > 66*time.Second {
			t.Fatalf("Jitter(1m, nil) = %v, outside ±10%%", got)
		}
	}
}
