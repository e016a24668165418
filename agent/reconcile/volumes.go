package reconcile

import (
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/volumes"
)

// podDir is the pod's directory under PodsDir, kubelet's
// <root>/pods/<uid>; "" when the agent mounts no volumes.
func (w *worker) podDir() string {
	if w.m.cfg.PodsDir == "" {
		return ""
	}
	return filepath.Join(w.m.cfg.PodsDir, string(w.uid))
}

// setUpVolumes prepares the pod's volumes before its sandbox or a
// container starts, as kubelet's WaitForAttachAndMount does in syncPod. A
// failure leaves the pod as it is (Pending, ContainerCreating for a new
// one) with kubelet's FailedMount event, and is retried.
func (w *worker) setUpVolumes(pod *corev1.Pod) bool {
	dir := w.podDir()
	if dir == "" {
		return true
	}
	if err := volumes.SetUp(pod, dir, w.m.cfg.MemoryAllocatable); err != nil {
		w.m.cfg.Events.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "%s", err.Error())
		w.m.cfg.Log.Warn("set up pod volumes", "pod", w.ref.String(), "err", err)
		w.syncFailed()
		return false
	}
	return true
}

// removeVolumes unmounts and deletes the pod's directory once the pod is
// gone (hostPath volumes stay).
func (w *worker) removeVolumes() error {
	if dir := w.podDir(); dir != "" {
		return volumes.Remove(dir)
	}
	return nil
}
