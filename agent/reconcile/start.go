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
	if !w.postStart(ctx, pod, &c, st) {
		return runtime.ContainerStatus{}, false
	}
	return st, true
}

// postStart is kubelet's step 4 of startContainer: the postStart hook runs
// before the container counts as running (the sync waits for it, so the
// pod shows ContainerCreating meanwhile). A failed hook kills the
// container (Killing "FailedPostStartHook"), records FailedPostStartHook
// without the hook's message (kubelet keeps secrets out of events), and
// leaves the container waiting with PostStartHookError and that message
// until the restart policy starts it again. A deletion of the pod cuts
// the hook short. It reports whether the container runs.
func (w *worker) postStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st runtime.ContainerStatus) bool {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil || w.m.cfg.Hooks == nil {
		return true
	}
	hctx, release := w.hookContext(ctx)
	msg, err := w.m.cfg.Hooks.RunHook(hctx, pod, c, st.ID, w.podIP(), c.Lifecycle.PostStart)
	release()
	if err == nil {
		return true
	}
	field := fieldPath(c.Name, st.Init)
	w.m.cfg.Log.Warn("postStart hook failed", "pod", w.ref.String(), "container", c.Name, "err", err, "message", msg)
	w.m.cfg.Events.EventfOnField(pod, field, corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed")
	if w.killed == nil {
		w.killed = map[string]bool{}
	}
	w.killContainer(ctx, pod, st, map[string]string{st.ID: "FailedPostStartHook"}, time.Duration(rawGracePeriod(pod))*time.Second, minimumGracePeriodSeconds*time.Second)
	w.m.cache.markStale(w.uid)
	w.setWaiting(c.Name, "PostStartHookError", msg)
	w.syncFailed()
	return false
}
