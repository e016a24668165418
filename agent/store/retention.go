package store

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	// MaxEvents bounds the events kept; the oldest go first.
	MaxEvents = 1000
	// EventTTL is how long an event is kept after it was last seen: the
	// API server's default --event-ttl.
	EventTTL = time.Hour
)

// pruneEventsLocked deletes events last seen more than EventTTL ago and the
// oldest beyond MaxEvents; watchers see them DELETED, as when the API
// server's storage expires them.
func (s *Store) pruneEventsLocked(now time.Time) {
	// One pass drops the expired and finds the oldest of the rest; the
	// loop runs again only while there are too many (one event per Put).
	for {
		var (
			n          int
			oldest     key
			oldestSeen time.Time
			oldestRV   uint64
		)
		for k, obj := range s.objects {
			if k.kind != KindEvent {
				continue
			}
			seen := eventLastSeen(obj.(*corev1.Event))
			if now.Sub(seen) > EventTTL {
				_ = s.deleteLocked(k) // deleting during range is allowed
				continue
			}
			n++
			rv := rvOf(obj)
			if n == 1 || seen.Before(oldestSeen) || (seen.Equal(oldestSeen) && rv < oldestRV) {
				oldest, oldestSeen, oldestRV = k, seen, rv
			}
		}
		if n <= MaxEvents {
			return
		}
		_ = s.deleteLocked(oldest)
	}
}

func rvOf(obj runtime.Object) uint64 {
	_, meta, _ := kindOf(obj)
	rv, _ := strconv.ParseUint(meta.ResourceVersion, 10, 64) // the store wrote it
	return rv
}

// eventLastSeen is when an event last happened, by the fields the
// different event producers fill.
func eventLastSeen(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}
