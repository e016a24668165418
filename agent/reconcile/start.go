package reconcile

import (
	"context"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/volumes"
)

// start starts one container (kubelet's start closure and startContainer):
// record the restart in the crash-loop backoff, ensure the image, create
// and start. It returns the new instance, if one was created.
func (w *worker) start(ctx context.Context, pod *corev1.Pod, sandbox runtime.Sandbox, s Start) (runtime.ContainerStatus, bool) {
	c := s.Container
	ev := w.m.cfg.Events
	field := fieldPath(c.Name, s.Init)
	if !s.LastFinished.IsZero() {
		w.m.crash.Next(s.BackoffKey, s.LastFinished, w.m.cfg.Now())
		w.m.state.markDirty()
	}
	img, ok := w.ensureImage(ctx, pod, c, field)
	if !ok {
		return runtime.ContainerStatus{}, false
	}
	cfg := runtime.ContainerConfig{
		Pod:                    w.ref,
		Sandbox:                sandbox,
		Spec:                   c,
		PodSecurityContext:     pod.Spec.SecurityContext,
		Init:                   s.Init,
		Attempt:                s.Attempt,
		LogDir:                 filepath.Join(w.podLogDir(), c.Name),
		Image:                  img,
		TerminationGracePeriod: time.Duration(gracePeriod(pod)) * time.Second,
	}
	if dir := w.podDir(); dir != "" {
		mounts, err := volumes.ContainerMounts(pod, &c, dir)
		if err != nil {
			// kubelet's generateContainerConfig failure.
			ev.EventfOnField(pod, field, corev1.EventTypeWarning, "Failed", "Error: %v", err)
			w.setWaiting(c.Name, "CreateContainerConfigError", err.Error())
			w.syncFailed()
			w.m.cfg.Log.Warn("container mounts", "pod", w.ref.String(), "container", c.Name, "err", err)
			return runtime.ContainerStatus{}, false
		}
		cfg.Mounts = mounts
	}
	if w.m.cfg.MemoryCapacity > 0 {
		cfg.Resources = containerResources(pod, &c, w.m.cfg.MemoryCapacity)
	}
	st, err := w.m.cfg.Runtime.StartContainer(ctx, cfg)
	if err != nil {
		reason := "CreateContainerError"
		if st.ID != "" {
			// Created, then failed to start: the instance stays, exited.
			reason = "RunContainerError"
			ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
		}
		ev.EventfOnField(pod, field, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		w.setWaiting(c.Name, reason, err.Error())
		w.syncFailed()
		w.m.cfg.Log.Warn("start container", "pod", w.ref.String(), "container", c.Name, "err", err)
		return st, st.ID != ""
	}
	delete(w.waiting, c.Name)
	ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	ev.EventfOnField(pod, field, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	return st, true
}
