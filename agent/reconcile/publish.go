package reconcile

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/podboot/podboot/agent/podstatus"
)

// publish computes the pod's status and publishes the pod if it changed.
// Orphans (no spec) are not published.
func (w *worker) publish(pod *corev1.Pod, snap podSnapshot, finished bool) {
	status := podstatus.Compute(podstatus.Input{
		Pod:            pod,
		Sandbox:        snap.sandbox,
		SandboxStopped: finished,
		Containers:     snap.containers,
		Waiting:        w.waiting,
		Previous:       w.previous,
		HostIP:         w.m.cfg.HostIP,
		Probes:         w.m.cfg.Probes,
		AgentStarted:   w.m.cfg.AgentStarted,
		Now:            w.m.cfg.Now(),
	})
	if w.rejection != nil {
		// kubelet's rejectPod: Failed with the admission's reason; QoS kept.
		status = corev1.PodStatus{
			Phase:    corev1.PodFailed,
			Reason:   w.rejection.Reason,
			Message:  "Pod was rejected: " + w.rejection.Message,
			QOSClass: status.QOSClass,
		}
	}
	if ev := w.eviction(); ev != nil && w.rejection == nil {
		status = evictedStatus(status, ev, metaNow(w.m.cfg.Now()))
	}
	w.terminal.Store(status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed)
	w.previous = &status
	w.m.state.recordPod(w.ref, w.created, &status)
	if w.pod == nil {
		return
	}
	w.updateProber(pod, &status)
	out := pod.DeepCopy()
	out.Status = status
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	// The metadata and spec are the pod's latest, not this sync's
	// snapshot: a label written while a long sync ran (a container start
	// under a slow CPU) is already in the store (publishUpdate), and
	// publishing the snapshot would take it back out, so that the next
	// write, which starts from the store, would lose it.
	w.latestInto(out)
	w.publishLocked(out)
}

// publishUpdate publishes the pod's latest metadata and spec with the
// status last published: the store shows a change at once, as the API
// server's would, even while the worker is busy in a long sync (a write
// that follows starts from the store). The sync the change wakes acts on
// a changed spec and publishes the new status.
func (w *worker) publishUpdate() {
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	if w.published == nil {
		return // the worker's first sync publishes
	}
	out := w.published.DeepCopy()
	w.latestInto(out)
	w.publishLocked(out)
}

// latestInto gives out the worker's latest metadata and spec, keeping
// out's deletion fields (the sync's, or the published pod's).
func (w *worker) latestInto(out *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	deletedAt, grace := out.DeletionTimestamp, out.DeletionGracePeriodSeconds
	w.pod.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	w.pod.Spec.DeepCopyInto(&out.Spec)
	out.DeletionTimestamp, out.DeletionGracePeriodSeconds = deletedAt, grace
	out.CreationTimestamp = w.created
	if out.Spec.NodeName == "" {
		out.Spec.NodeName = w.m.cfg.NodeName
	}
}

// publishLocked publishes out, under pubMu, unless it is what was
// published last.
func (w *worker) publishLocked(out *corev1.Pod) {
	if w.published != nil && equality.Semantic.DeepEqual(w.published, out) {
		return
	}
	w.published = out
	w.m.cfg.Pods.PublishPod(out.DeepCopy())
}
