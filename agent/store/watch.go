package store

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/watch"
)

// watchBuffer is how many events a watcher may lag behind before it is
// dropped; the API server's watch cache uses a buffer of the same order.
const watchBuffer = 100

// ExpiredError is returned by Watch when the requested resourceVersion is
// older than the history kept; the API answers it with 410 Gone (Expired)
// and clients list again.
type ExpiredError struct {
	Requested, Oldest uint64
}

func (e *ExpiredError) Error() string {
	// The API server's wording, which clients show as is.
	return fmt.Sprintf("too old resource version: %d (%d)", e.Requested, e.Oldest)
}

// BadResourceVersionError is returned by Watch for a resourceVersion that
// is not a number.
type BadResourceVersionError struct {
	ResourceVersion string
}

func (e *BadResourceVersionError) Error() string {
	return fmt.Sprintf("invalid resource version %q", e.ResourceVersion)
}

type watcher struct {
	kind, namespace string
	minRV           uint64 // deliver only changes newer than this
	ch              chan watch.Event
	stop            func() bool // unregisters the context.AfterFunc
}

// Watch streams changes to objects of kind in namespace ("" = all). With
// resourceVersion "" or "0" it first sends a synthetic ADDED event for each
// current object; with a recent resourceVersion it replays the changes made
// since; with one older than the kept history it fails with *ExpiredError.
// The channel is closed when ctx ends, or when the watcher falls more than
// a buffer behind (it must watch again). Objects on the channel are copies.
func (s *Store) Watch(ctx context.Context, kind, namespace, resourceVersion string) (<-chan watch.Event, error) {
	if !Known(kind) {
		return nil, fmt.Errorf("watch %s: unknown kind", kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	var initial []watch.Event
	w := &watcher{kind: kind, namespace: namespace}
	switch resourceVersion {
	case "", "0":
		for _, obj := range s.listLocked(kind, namespace) {
			initial = append(initial, watch.Event{Type: watch.Added, Object: obj.DeepCopyObject()})
		}
		w.minRV = s.rv
	default:
		rv, err := strconv.ParseUint(resourceVersion, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", kind, &BadResourceVersionError{ResourceVersion: resourceVersion})
		}
		if rv < s.compacted {
			return nil, fmt.Errorf("watch %s: %w", kind, &ExpiredError{Requested: rv, Oldest: s.compacted + 1})
		}
		for _, c := range s.history {
			if c.rv > rv && w.matches(c) {
				initial = append(initial, watch.Event{Type: c.typ, Object: c.obj.DeepCopyObject()})
			}
		}
		w.minRV = max(rv, s.rv)
	}
	w.ch = make(chan watch.Event, len(initial)+watchBuffer)
	for _, e := range initial {
		w.ch <- e
	}
	s.watchers[w] = struct{}{}
	w.stop = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.dropLocked(w)
	})
	return w.ch, nil
}

func (w *watcher) matches(c change) bool {
	return c.key.kind == w.kind && (w.namespace == "" || c.key.namespace == w.namespace)
}

// notifyLocked hands a change to every interested watcher without
// blocking: a watcher whose buffer is full is dropped.
func (s *Store) notifyLocked(c change) {
	for w := range s.watchers {
		if c.rv <= w.minRV || !w.matches(c) {
			continue
		}
		select {
		case w.ch <- watch.Event{Type: c.typ, Object: c.obj.DeepCopyObject()}:
		default:
			w.stop()
			s.dropLocked(w)
		}
	}
}

func (s *Store) dropLocked(w *watcher) {
	if _, ok := s.watchers[w]; !ok {
		return
	}
	delete(s.watchers, w)
	close(w.ch)
}

// ResourceVersion returns the store's current resourceVersion.
func (s *Store) ResourceVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatUint(s.rv, 10)
}

// Watchers returns how many watches are open.
func (s *Store) Watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}
