package source

import (
	"math/rand/v2"
	"time"
)

// Jitter is interval spread uniformly over ±10% by rnd (a value in [0, 1),
// rand.Float64 when nil), so a fleet that booted together after a power
// cut does not poll the registry in lockstep.
func Jitter(interval time.Duration, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	f := min(max(rnd(), 0), 1)
	return interval + time.Duration((2*f-1)*0.1*float64(interval))
}
