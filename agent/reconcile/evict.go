package reconcile

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// eviction is what Evict decided for a running pod: its status reason and
// message.
type eviction struct {
	reason, message string
}

// Evict kills every container of a running pod at once with no grace
// period and shows it Failed with reason and message, as kubelet's
// eviction manager does through killPodNow (pkg/kubelet/eviction,
// pkg/kubelet/pod_workers.go): the DisruptionTarget condition with reason
// TerminationByKubelet, a Warning event with the reason, and the pod is
// never started again (its manifest must change, giving it a new UID).
// The containers' last states stay in its status. The kill happens on the
// pod's worker; Evict returns once it is decided.
func (m *Manager) Evict(uid types.UID, reason, message string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.workers[uid]
	if !ok || w.pod == nil {
		return fmt.Errorf("evict pod %s: no such pod", uid)
	}
	name := w.ref.String()
	if w.rejection != nil || w.terminal.Load() || w.isTerminating() {
		return fmt.Errorf("evict pod %s: already terminal or terminating", name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.evicted != nil {
		return fmt.Errorf("evict pod %s: already evicted", name)
	}
	w.evicted = &eviction{reason: reason, message: message}
	m.cfg.Log.Warn("evicting pod", "pod", name, "reason", reason, "message", message)
	w.wakeUp()
	return nil
}

// ActivePods returns the desired pods that may still run: not refused at
// admission, not evicted, not terminal, not terminating (kubelet's
// GetActivePods, which the eviction manager ranks).
func (m *Manager) ActivePods() []*corev1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*corev1.Pod
	for uid, p := range m.desired {
		w, ok := m.workers[uid]
		if !ok || w.rejection != nil || w.terminal.Load() || w.isTerminating() || w.eviction() != nil {
			continue
		}
		out = append(out, p.DeepCopy())
	}
	return out
}

func (w *worker) eviction() *eviction {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.evicted
}

// syncEvicted kills what still runs of an evicted pod with grace 0 and
// publishes it Failed; the Warning event is recorded once.
func (w *worker) syncEvicted(ctx context.Context, pod *corev1.Pod, snap podSnapshot, ev *eviction) {
	var running []string
	for _, c := range snap.containers {
		if c.State == runtime.ContainerRunning || c.State == runtime.ContainerCreated {
			running = append(running, c.ID)
		}
	}
	if w.previous == nil || w.previous.Reason != ev.reason {
		w.m.cfg.Events.Eventf(pod, corev1.EventTypeWarning, ev.reason, "%s", ev.message)
	}
	if len(running) > 0 {
		noGrace := time.Duration(0)
		w.kill(ctx, pod, snap.containers, running, nil, nil, &noGrace)
		if s, err := w.observe(ctx); err == nil {
			snap = s
		} else {
			w.m.cfg.Log.Warn("sync evicted pod: observe runtime", "pod", w.ref.String(), "err", err)
		}
	}
	w.retryAt = time.Time{} // nothing is retried for it
	w.publish(pod, snap, true)
	w.m.saveState()
}

// evictedStatus is kubelet's status for an evicted pod: phase Failed, the
// eviction's reason and message, and the DisruptionTarget condition
// (kubelet sets it since 1.26), the rest as computed.
func evictedStatus(status corev1.PodStatus, ev *eviction, now metav1.Time) corev1.PodStatus {
	status.Phase = corev1.PodFailed
	status.Reason = ev.reason
	status.Message = ev.message
	for i, c := range status.Conditions {
		if c.Type == corev1.DisruptionTarget {
			status.Conditions = append(status.Conditions[:i:i], status.Conditions[i+1:]...)
			if c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonTerminationByKubelet && c.Message == ev.message {
				now = c.LastTransitionTime
			}
			break
		}
	}
	status.Conditions = append(status.Conditions, corev1.PodCondition{
		Type:               corev1.DisruptionTarget,
		Status:             corev1.ConditionTrue,
		Reason:             corev1.PodReasonTerminationByKubelet,
		Message:            ev.message,
		LastTransitionTime: now,
	})
	return status
}
