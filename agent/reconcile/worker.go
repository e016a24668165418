package reconcile

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
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

	mu  sync.Mutex
	pod *corev1.Pod // nil for an orphan found only in the runtime
	// deleteAt and deleteGrace are the API server's deletionTimestamp (to
	// the nanosecond, so that shortening computes as the API server does;
	// published to the second) and deletionGracePeriodSeconds, set once
	// the pod is terminating.
	deleteAt    *metav1.Time
	deleteGrace int64
	// requestedGrace is SetDeletionGrace's grace for a terminate to come.
	requestedGrace *int64
	// stopKill, set while a terminating sync stops containers, cancels
	// that stop when the grace period is shortened (kubelet's pod worker
	// cancels its sync the same way), so the next sync stops them again
	// with the shorter grace.
	stopKill context.CancelFunc
	// stopHook, set while a postStart hook runs, cuts it short when the
	// pod is deleted (kubelet's pod worker cancels its sync then).
	stopHook context.CancelFunc
	shutdown bool      // StopAll: stop containers, remove nothing
	evicted  *eviction // Evict: killed, Failed, never started again
	print    string

	// Owned by the worker goroutine.
	created  metav1.Time
	previous *corev1.PodStatus
	waiting  map[string]podstatus.Waiting
	killMu   sync.Mutex      // kills run concurrently
	killed   map[string]bool // Killing events already recorded, under killMu
	// published is the pod last published, under pubMu: the worker's
	// syncs and SetDesired's updates both publish.
	pubMu     sync.Mutex
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

// terminate marks the pod deleted as the API server's graceful deletion
// does (registry/rest.BeforeDelete): deletionGracePeriodSeconds is the grace
// SetDeletionGrace asked for, else the pod's
// terminationGracePeriodSeconds, else the API's default of 30 s, and
// deletionTimestamp is now plus that grace, the time by which the pod is
// to be gone.
func (w *worker) terminate(now time.Time, shutdown bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if shutdown {
		w.shutdown = true
	}
	if w.deleteAt == nil {
		g := int64(corev1.DefaultTerminationGracePeriodSeconds)
		switch {
		case w.requestedGrace != nil:
			g = *w.requestedGrace
		case w.pod != nil && w.pod.Spec.TerminationGracePeriodSeconds != nil:
			g = max(*w.pod.Spec.TerminationGracePeriodSeconds, 0)
		}
		t := metav1.NewTime(now.Add(time.Duration(g) * time.Second))
		w.deleteAt, w.deleteGrace = &t, g
	}
	if w.stopHook != nil {
		w.stopHook()
	}
	w.wakeUp()
}

// hookContext is the context a postStart hook runs in: cancelled when the
// pod is deleted, or already cancelled if it is. release must be called
// once the hook is over.
func (w *worker) hookContext(ctx context.Context) (context.Context, func()) {
	hctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.stopHook = cancel
	if w.deleteAt != nil {
		cancel()
	}
	w.mu.Unlock()
	return hctx, func() {
		w.mu.Lock()
		w.stopHook = nil
		w.mu.Unlock()
		cancel()
	}
}

// setDeletionGrace records the grace of a deletion to come or shortens the
// one in progress, never extending it. A shortened grace moves
// deletionTimestamp back by the difference, never into the past; a grace
// that has run out by then becomes 1 s unless 0 was asked for (the API
// server's rules in registry/rest.BeforeDelete). A stop in progress is
// cancelled so that the next sync stops the containers with the new grace.
func (w *worker) setDeletionGrace(seconds int64, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deleteAt == nil {
		if w.requestedGrace == nil || seconds < *w.requestedGrace {
			w.requestedGrace = &seconds
		}
		return
	}
	if seconds >= w.deleteGrace {
		return
	}
	at := w.deleteAt.Add(time.Duration(seconds-w.deleteGrace) * time.Second)
	if at.Before(now) {
		at = now
		if seconds != 0 {
			seconds = 1
		}
	}
	t := metav1.NewTime(at)
	w.deleteAt, w.deleteGrace = &t, seconds
	if w.stopKill != nil {
		w.stopKill()
	}
	w.wakeUp()
}

// killContext is the context a terminating sync whose pod showed
// deletionGracePeriodSeconds grace stops containers with: cancelled when
// the grace period is shortened, or already cancelled if it was shortened
// since that pod was read. release must be called once the stop is over.
func (w *worker) killContext(ctx context.Context, grace int64) (killCtx context.Context, release func()) {
	killCtx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.stopKill = cancel
	if w.deleteGrace < grace {
		cancel()
	}
	w.mu.Unlock()
	return killCtx, func() {
		w.mu.Lock()
		w.stopKill = nil
		w.mu.Unlock()
		cancel()
	}
}

// update gives the pod the desired pod's metadata and spec and wakes the
// worker to publish it and act on it; an unchanged pod does nothing
// (SetDesired calls this for every pod). Under the same UID only what an
// API server's pod update may change can differ (the static-pod UID hashes
// the rest): labels, annotations and the like are only republished, as
// are activeDeadlineSeconds, tolerations and terminationGracePeriodSeconds
// (the next kill's grace); a container's new image makes the sync restart
// that container with it (ComputeActions), as kubelet does for an updated
// pod. A namespace or name that differs under the same UID (which the
// UID, a hash that includes them, rules out) is not taken: the worker's
// runtime objects and logs are named by them.
func (w *worker) update(desired *corev1.Pod) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pod == nil || desired.Namespace != w.ref.Namespace || desired.Name != w.ref.Name ||
		equality.Semantic.DeepEqual(w.pod.ObjectMeta, desired.ObjectMeta) && equality.Semantic.DeepEqual(w.pod.Spec, desired.Spec) {
		return false
	}
	pod := w.pod.DeepCopy()
	desired.ObjectMeta.DeepCopyInto(&pod.ObjectMeta)
	desired.Spec.DeepCopyInto(&pod.Spec)
	w.pod = pod
	w.wakeUp()
	return true
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
// minimal pod (its grace is the API's default).
func (w *worker) currentPod() (pod *corev1.Pod, shutdown bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pod != nil {
		pod = w.pod.DeepCopy()
	} else {
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: w.ref.UID, Namespace: w.ref.Namespace, Name: w.ref.Name}}
	}
	if w.deleteAt != nil {
		t := metaNow(w.deleteAt.Time)
		pod.DeletionTimestamp = &t
		g := w.deleteGrace
		pod.DeletionGracePeriodSeconds = &g
	}
	return pod, w.shutdown
}

// gracePeriod is how long kubelet gives a container to stop:
// deletionGracePeriodSeconds, else terminationGracePeriodSeconds, else the
// API default of 30 s; never under kubelet's minimum of 2 s
// (kuberuntime's killContainer: "always give containers a minimal shutdown
// window"). So a deletion with grace 0 (--force --grace-period=0) or 1
// (--now) sends SIGTERM and kills 2 s later, as kubelet does: its pod
// worker raises a grace under 1 to 1 (calculateEffectiveGracePeriod), and
// killContainer raises that to 2.
func gracePeriod(pod *corev1.Pod) int64 {
	return max(rawGracePeriod(pod), minimumGracePeriodSeconds)
}

// rawGracePeriod is kubelet's setTerminationGracePeriod for a kill without
// a probe's reason, before the minimum: the time a preStop hook may take.
func rawGracePeriod(pod *corev1.Pod) int64 {
	g := int64(corev1.DefaultTerminationGracePeriodSeconds)
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		g = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	return g
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
