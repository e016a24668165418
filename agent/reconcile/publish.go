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
	out := pod.DeepCopy()
	out.CreationTimestamp = w.created
	if out.Spec.NodeName == "" {
		out.Spec.NodeName = w.m.cfg.NodeName
	}
	out.Status = status
	if w.published != nil && equality.Semantic.DeepEqual(w.published, out) {
		return
	}
	w.published = out
	w.m.cfg.Pods.PublishPod(out.DeepCopy())
}
