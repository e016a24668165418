package supervise

import "time"

const (
	initialBackoff = time.Second
	maxBackoff     = 30 * time.Second
	// resetAfter is how long a run must last to count as healthy, so that
	// the next crash is retried after initialBackoff again.
	resetAfter = 60 * time.Second
)

// backoff is the delay before a service is started again.
type backoff struct {
	last time.Duration
}

// next returns the delay after a run that lasted ran.
func (b *backoff) next(ran time.Duration) time.Duration {
	switch {
	case b.last == 0 || ran >= resetAfter:
		b.last = initialBackoff
	default:
		b.last = min(2*b.last, maxBackoff)
	}
	return b.last
}
