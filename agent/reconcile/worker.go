package reconcile

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/podstatus"
	"github.com/podboot/podboot/agent/runtime"
)

// worker is one pod's goroutine (kubelet's pod worker).
type worker struct {
	m    *Manager
	uid  types.UID
	ref  runtime.PodRef
	wake chan struct{}
	// done is closed once the pod is terminated.
	done      chan struct{}
	closeDone sync.Once

	// Owned by the Manager's lock.
	started bool
	// rejection is set once, before the worker starts, for a pod admission
	// refused: it is published Failed and never started.
	rejection *admission.Decision
	// terminal: the last status published was Succeeded or Failed (such a
	// pod no longer counts for admission, as in kubelet).
	terminal atomic.Bool

	mu       sync.Mutex
	pod      *corev1.Pod // nil for an orphan found only in the runtime
	deleteAt *metav1.Time
	shutdown bool      // StopAll: stop containers, remove nothing
	evicted  *eviction // Evict: killed, Failed, never started again
	print    string

	// Owned by the worker goroutine.
	created   metav1.Time
	previous  *corev1.PodStatus
	waiting   map[string]podstatus.Waiting
	killed    map[string]bool // Killing events already recorded
	published *corev1.Pod
	pullErrs  map[string]string // image backoff key -> "ErrImagePull: <cause>"
	retryAt   time.Time
}

func (m *Manager) newWorker(pod *corev1.Pod) *worker {
	w := &worker{
		m:    m,
		uid:  pod.UID,
		ref:  runtime.PodRef{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name},
		pod:  pod,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	w.created, w.previous = m.state.restorePod(pod.UID, metaNow(m.cfg.Now()))
	return w
}

func (m *Manager) newOrphanWorker(ref runtime.PodRef, now time.Time) *worker {
	w := &worker{m: m, uid: ref.UID, ref: ref, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.terminate(now, false)
	return w
}

func (w *worker) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// terminate marks the pod deleted (kubelet: deletionTimestamp set).
func (w *worker) terminate(now time.Time, shutdown bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if shutdown {
		w.shutdown = true
	}
	if w.deleteAt == nil {
		t := metaNow(now)
		w.deleteAt = &t
	}
	w.wakeUp()
}

func (w *worker) isTerminating() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deleteAt != nil
}

func (w *worker) lastFingerprint() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.print
}

func (w *worker) setFingerprint(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.print = p
}

// currentPod is the pod to sync: the desired pod, with deletionTimestamp
// and deletionGracePeriodSeconds once it is terminating. An orphan gets a
// minimal pod with the API's default grace period.
func (w *worker) currentPod() (pod *corev1.Pod, shutdown bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pod != nil {
		pod = w.pod.DeepCopy()
	} else {
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: w.ref.UID, Namespace: w.ref.Namespace, Name: w.ref.Name}}
	}
	if w.deleteAt != nil {
		t := *w.deleteAt
		pod.DeletionTimestamp = &t
		g := gracePeriod(pod)
		pod.DeletionGracePeriodSeconds = &g
	}
	return pod, w.shutdown
}

// gracePeriod is kubelet's: deletionGracePeriodSeconds, else
// terminationGracePeriodSeconds, else the API default of 30 s; never under
// kubelet's minimum of 2 s.
func gracePeriod(pod *corev1.Pod) int64 {
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		g = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	return max(g, minimumGracePeriodSeconds)
}

const minimumGracePeriodSeconds = 2

// run syncs the pod whenever woken or when a backoff ends, until the pod
// is gone or ctx ends.
func (w *worker) run(ctx context.Context) {
	gone, forget := false, false
	defer func() {
		w.m.mu.Lock()
		w.started = false
		w.m.mu.Unlock()
		if gone {
			w.closeDone.Do(func() { close(w.done) })
		}
		w.m.workerDone(w, forget)
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		if w.isTerminating() || !w.m.nameBusy(w) {
			// This sync serves every wake-up received so far.
			select {
			case <-w.wake:
			default:
			}
			start := time.Now()
			gone = w.sync(ctx)
			if observe := w.m.cfg.ObserveSync; observe != nil {
				observe(time.Since(start))
			}
			if gone {
				forget = !w.isShutdown()
				return
			}
		}
		timer.Stop()
		if d, ok := w.nextWake(); ok {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

func (w *worker) isShutdown() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.shutdown
}

// nextWake is how long to sleep before the next sync when nothing wakes the
// worker: until the earliest backoff ends, else until woken (the relist
// wakes a pod whose containers changed, so an idle pod costs nothing).
func (w *worker) nextWake() (time.Duration, bool) {
	if w.retryAt.IsZero() {
		return 0, false
	}
	return max(w.retryAt.Sub(w.m.cfg.Now()), 0), true
}
