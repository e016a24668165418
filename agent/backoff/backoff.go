package backoff

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// kubelet's constants (pkg/kubelet/kubelet.go: backOffPeriod,
// MaxContainerBackOff, and the crash-loop HasExpiredFunc of 600 s, which is
// also client-go's default 2*max for the image pull backoff).
const (
	DefaultInitial = 10 * time.Second
	DefaultMax     = 300 * time.Second
	DefaultExpiry  = 600 * time.Second
)

// Backoff holds one backoff entry per key. It is safe for concurrent use.
type Backoff struct {
	initial, max, expiry time.Duration

	mu      sync.Mutex
	entries map[string]entry
}

type entry struct {
	backoff    time.Duration
	lastUpdate time.Time
}

// New returns a Backoff starting at initial, doubling up to max, whose
// entries expire once an event comes more than expiry after their last
// update.
func New(initial, max, expiry time.Duration) *Backoff {
	return &Backoff{initial: initial, max: max, expiry: expiry, entries: map[string]entry{}}
}

// NewDefault returns kubelet's backoff: 10 s, doubling to 5 min, reset after
// 10 min.
func NewDefault() *Backoff { return New(DefaultInitial, DefaultMax, DefaultExpiry) }

// ContainerKey is the key of a container's crash-loop backoff. kubelet also
// hashes the image and resources in; a static pod whose spec changes gets a
// new UID, so the UID and name suffice here.
func ContainerKey(uid types.UID, container string) string {
	return string(uid) + "/" + container
}

// ImageKey is the key of an image's pull backoff within a pod (kubelet's
// "<uid>_<image>").
func ImageKey(uid types.UID, image string) string {
	return string(uid) + "_" + image
}

// Get returns the current backoff of key, 0 when it has none.
func (b *Backoff) Get(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entries[key].backoff
}

// Next records a failure of key: a new or expired entry starts at the
// initial backoff, an existing one doubles up to the cap. eventTime decides
// expiry (kubelet passes the container's finishedAt); now becomes the
// entry's last update.
func (b *Backoff) Next(key string, eventTime, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		e = entry{backoff: b.initial}
	} else {
		e.backoff = min(e.backoff*2, b.max)
	}
	e.lastUpdate = now
	b.entries[key] = e
}

// IsInBackOffSince reports whether, at now, key is still backing off from
// an event at eventTime (kubelet: the finishedAt of the latest exited
// instance).
func (b *Backoff) IsInBackOffSince(key string, eventTime, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		return false
	}
	return now.Sub(eventTime) < e.backoff
}

// IsInBackOffSinceUpdate reports whether, at now, key is still backing off
// from its last update (kubelet's image pull backoff).
func (b *Backoff) IsInBackOffSinceUpdate(key string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, now) {
		return false
	}
	return now.Sub(e.lastUpdate) < e.backoff
}

// LastUpdate returns when key was last updated, zero when it has no entry.
func (b *Backoff) LastUpdate(key string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entries[key].lastUpdate
}

// Reset forgets key.
func (b *Backoff) Reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// GC forgets every entry that has expired at now.
func (b *Backoff) GC(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range b.entries {
		if b.expired(e, now) {
			delete(b.entries, k)
		}
	}
}

// Len returns the number of entries.
func (b *Backoff) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

func (b *Backoff) expired(e entry, eventTime time.Time) bool {
	return eventTime.Sub(e.lastUpdate) > b.expiry
}
