package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// ListContainers returns every container with podboot's labels in the
// namespace, including those an earlier agent started. Running tasks whose
// logs nobody copies (after an agent restart) get a copier re-attached to
// their FIFOs, so logging goes on without restarting them.
func (r *Runtime) ListContainers(ctx context.Context) ([]runtime.ContainerStatus, error) {
	ctx = r.withNamespace(ctx)
	ctrs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q", LabelPodUID))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]runtime.ContainerStatus, 0, len(ctrs))
	var errs []error
	for _, ctr := range ctrs {
		st, err := r.status(ctx, ctr)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.State == runtime.ContainerRunning && !r.hasCopier(st.ID) {
			if err := r.reattach(ctx, ctr); err != nil {
				errs = append(errs, err)
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, errors.Join(errs...)
}

// status reads one container's labels and task.
func (r *Runtime) status(ctx context.Context, ctr containerd.Container) (runtime.ContainerStatus, error) {
	info, err := ctr.Info(ctx)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: %w", ctr.ID(), err)
	}
	l := info.Labels
	st := runtime.ContainerStatus{
		ID:        info.ID,
		Pod:       runtime.PodRef{UID: types.UID(l[LabelPodUID]), Namespace: l[LabelPodNamespace], Name: l[LabelPodName]},
		Name:      l[LabelContainerName],
		Attempt:   parseAttempt(l[LabelAttempt]),
		Init:      l[LabelInit] == "true",
		CreatedAt: info.CreatedAt,
		StartedAt: parseTime(l[LabelStartedAt]),
		OOMKilled: l[LabelOOM] == "true",
		Image:     runtime.Image{Ref: l[LabelImageRef], ID: l[LabelImageID], StopSignal: l[LabelImageStopSignal]},
	}
	if msg := l[LabelStartError]; msg != "" {
		st.State, st.ExitCode = runtime.ContainerExited, exitCodeStartError
		st.Reason, st.Message = "StartError", msg
		st.FinishedAt = parseTime(l[LabelFinishedAt])
		return st, nil
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		st.State = runtime.ContainerCreated
		if !st.StartedAt.IsZero() {
			// Its task was deleted behind the agent's back: containerd
			// drops the task of a shim that died while it was down.
			// Nothing of it runs any more; containerd's CRI reports such a
			// container exited, with exit code 255 and reason Unknown. As
			// Unknown it would be killed forever and its pod never end.
			st.State, st.ExitCode, st.Reason = runtime.ContainerExited, unknownExitCode, unknownExitReason
			st.FinishedAt = parseTime(l[LabelFinishedAt])
		}
		return st, nil
	}
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: task: %w", ctr.ID(), err)
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: task status: %w", ctr.ID(), err)
	}
	switch ts.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		st.State = runtime.ContainerRunning
	case containerd.Created:
		st.State = runtime.ContainerCreated
	case containerd.Stopped:
		st.State = runtime.ContainerExited
		st.ExitCode = int32(ts.ExitStatus)
		st.FinishedAt = ts.ExitTime
		if st.OOMKilled {
			st.Reason = "OOMKilled"
		}
	default:
		st.State = runtime.ContainerUnknown
	}
	if st.StartedAt.IsZero() && st.State != runtime.ContainerCreated {
		st.StartedAt = st.CreatedAt
	}
	return st, nil
}

// reattach attaches a log copier to a running task's FIFOs.
func (r *Runtime) reattach(ctx context.Context, ctr containerd.Container) error {
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return fmt.Errorf("re-attach logs of container %q: %w", ctr.ID(), err)
	}
	path := labels[LabelLogPath]
	if path == "" {
		return fmt.Errorf("re-attach logs of container %q: no %s label", ctr.ID(), LabelLogPath)
	}
	var dio *cio.DirectIO
	task, err := ctr.Task(ctx, func(fifos *cio.FIFOSet) (cio.IO, error) {
		d, err := r.openFIFOs(fifos)
		if err != nil {
			return nil, err
		}
		dio = d
		return d, nil
	})
	if err != nil {
		return fmt.Errorf("re-attach logs of container %q: %w", ctr.ID(), err)
	}
	if dio == nil {
		return fmt.Errorf("re-attach logs of container %q: the task has no FIFOs", ctr.ID())
	}
	c, err := r.startCopier(ctr.ID(), dio, path)
	if err != nil {
		_ = dio.Close()
		return fmt.Errorf("re-attach logs of container %q: %w", ctr.ID(), err)
	}
	// A task that exits before the FIFOs were opened again leaves nothing
	// to wait for: its streams never end. Detach once it has exited and
	// its output had time to drain.
	exited, err := task.Wait(r.ctx)
	if err != nil {
		return fmt.Errorf("re-attach logs of container %q: %w", ctr.ID(), err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-exited:
		case <-c.done:
			return
		case <-r.ctx.Done():
			return
		}
		select {
		case <-c.done:
		case <-time.After(drainTimeout):
			c.io.Cancel()
			_ = c.io.Close()
		case <-r.ctx.Done():
		}
	}()
	return nil
}

func removeAll(p string) error {
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %q: %w", p, err)
	}
	return nil
}

// unknownExitCode and unknownExitReason are what containerd's CRI reports
// for a started container whose task is gone (internal/cri/server).
const (
	unknownExitCode   = 255
	unknownExitReason = "Unknown"
)
