package reconcile

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// HookRunner runs a container's lifecycle hook handler (agent/lifecycle):
// on failure it returns kubelet's event message and an error.
type HookRunner interface {
	RunHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, containerID, podIP string, h *corev1.LifecycleHandler) (msg string, err error)
}

// probeResults is the prober's results for ComputeActions; nil without a
// prober.
func (w *worker) probeResults() ProbeResults {
	if w.m.cfg.Probes == nil {
		return nil
	}
	return w.m.cfg.Probes
}

// hasProbes reports whether any container of pod (sidecars included) has
// a probe: only those pods are handed to the prober.
func hasProbes(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil {
				return true
			}
		}
	}
	return false
}

// updateProber hands the prober the pod's spec and the status just
// computed (kubelet's probe workers read the status manager's).
func (w *worker) updateProber(pod *corev1.Pod, status *corev1.PodStatus) {
	if w.m.cfg.Probes == nil || pod == nil || !hasProbes(pod) {
		return
	}
	p := pod.DeepCopy()
	p.Status = *status.DeepCopy()
	w.m.cfg.Probes.UpdatePod(p, &p.Status)
}

// forgetProbes stops the pod's probe workers.
func (w *worker) forgetProbes() {
	if w.m.cfg.Probes != nil {
		w.m.cfg.Probes.RemovePod(w.uid)
	}
}

// containerSpec is the spec of the pod's container name (an init
// container when init), nil when the pod has none.
func containerSpec(pod *corev1.Pod, name string, init bool) *corev1.Container {
	list := pod.Spec.Containers
	if init {
		list = pod.Spec.InitContainers
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// podIP is the pod's address as last published ("" before it has one):
// the default host of an httpGet hook.
func (w *worker) podIP() string {
	if w.previous == nil {
		return ""
	}
	return w.previous.PodIP
}
