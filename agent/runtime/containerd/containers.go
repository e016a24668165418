package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"

	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/runtime"
)

// exitCodeStartError is the exit code of a container that could not
// start, as containerd's CRI reports it.
const exitCodeStartError = 128

func newContainerID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate container ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// StartContainer creates the container and starts its task. When the task
// cannot be created or started, the container remains, exited with
// StartError, and the error is returned too.
func (r *Runtime) StartContainer(ctx context.Context, cfg runtime.ContainerConfig) (runtime.ContainerStatus, error) {
	ctx = r.withNamespace(ctx)
	what := fmt.Sprintf("container %q of pod %s", cfg.Spec.Name, cfg.Pod)
	if cfg.Image.Ref == "" {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: no image (EnsureImage first)", what)
	}
	img, err := r.client.GetImage(ctx, cfg.Image.Ref)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: image %q: %w", what, cfg.Image.Ref, err)
	}
	imgSpec, err := img.Spec(ctx)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: read config of image %q: %w", what, cfg.Image.Ref, err)
	}
	id, err := newContainerID()
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: %w", what, err)
	}
	podFiles, err := r.podFileMounts(cfg.Sandbox, cfg.Mounts)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: %w", what, err)
	}
	logPath := filepath.Join(cfg.LogDir, strconv.Itoa(int(cfg.Attempt))+".log")
	labels := map[string]string{
		LabelPodUID:          string(cfg.Pod.UID),
		LabelPodNamespace:    cfg.Pod.Namespace,
		LabelPodName:         cfg.Pod.Name,
		LabelContainerName:   cfg.Spec.Name,
		LabelAttempt:         strconv.Itoa(int(cfg.Attempt)),
		LabelInit:            strconv.FormatBool(cfg.Init),
		LabelLogPath:         logPath,
		LabelImageRef:        cfg.Image.Ref,
		LabelImageID:         cfg.Image.ID,
		LabelImageStopSignal: cfg.Image.StopSignal,
	}
	ctr, err := r.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(runtimeName, &options.Options{BinaryName: r.cfg.RuncPath, Root: r.cfg.RuncRoot}),
		containerd.WithNewSpec(append(r.specOpts(id, cfg, img, imgSpec.Config.Entrypoint), podFiles)...),
		containerd.WithContainerLabels(labels),
	)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: create container: %w", what, err)
	}
	if err := r.startTask(ctx, ctr, logPath); err != nil {
		msg := err.Error()
		if _, lerr := ctr.SetLabels(ctx, map[string]string{LabelStartError: msg, LabelFinishedAt: formatTime(time.Now())}); lerr != nil {
			err = errors.Join(err, fmt.Errorf("record start error: %w", lerr))
		}
		st, serr := r.status(ctx, ctr)
		if serr != nil {
			st = runtime.ContainerStatus{ID: id, Pod: cfg.Pod, Name: cfg.Spec.Name, State: runtime.ContainerExited, ExitCode: exitCodeStartError, Reason: "StartError", Message: msg}
		}
		return st, fmt.Errorf("start %s: %w", what, err)
	}
	st, err := r.status(ctx, ctr)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("start %s: %w", what, err)
	}
	return st, nil
}

// startTask creates the task with its log FIFOs and starts it. Its errors
// read like containerd's CRI start errors.
func (r *Runtime) startTask(ctx context.Context, ctr containerd.Container, logPath string) (retErr error) {
	id := ctr.ID()
	dio, err := r.newFIFOs(id)
	if err != nil {
		return err
	}
	if _, err := r.startCopier(id, dio, logPath); err != nil {
		_ = dio.Close()
		return err
	}
	defer func() {
		if retErr != nil {
			r.dropCopier(id)
		}
	}()
	task, err := ctr.NewTask(ctx, func(string) (cio.IO, error) { return dio, nil })
	if err != nil {
		return fmt.Errorf("failed to create containerd task: %w", err)
	}
	// Wait before Start, so an immediate exit is not missed.
	if _, err := task.Wait(r.ctx); err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		return fmt.Errorf("failed to wait for containerd task: %w", err)
	}
	// Taken before Start so that a process that exits at once never
	// finishes before it started.
	startedAt := time.Now()
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx, containerd.WithProcessKill)
		return fmt.Errorf("failed to start containerd task %q: %w", id, err)
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{LabelStartedAt: formatTime(startedAt)}); err != nil {
		return fmt.Errorf("record start time: %w", err)
	}
	return nil
}

// StopContainer sends the image's stop signal (else SIGTERM), waits up to
// grace, then SIGKILLs and waits for the exit. The exited task is kept so
// its exit code and time stay observable.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.withNamespace(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("stop container %q: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop container %q: %w", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("stop container %q: %w", id, err)
	}
	if st.Status == containerd.Stopped {
		return nil
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return fmt.Errorf("stop container %q: %w", id, err)
	}
	sig := syscall.SIGTERM
	if name := labels[LabelImageStopSignal]; name != "" {
		s, err := signal.ParseSignal(name)
		if err != nil {
			return fmt.Errorf("stop container %q: image stop signal %q: %w", id, name, err)
		}
		sig = s
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("stop container %q: %w", id, err)
	}
	if st.Status == containerd.Created {
		// Never started: nothing to signal gracefully.
		grace = 0
	}
	if grace > 0 {
		if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop container %q: send %v: %w", id, sig, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			r.waitCopier(ctx, id)
			return nil
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("stop container %q: %w", id, ctx.Err())
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %q: send SIGKILL: %w", id, err)
	}
	select {
	case <-exited:
		r.waitCopier(ctx, id)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop container %q: wait for exit after SIGKILL: %w", id, ctx.Err())
	}
}

// RemoveContainer deletes a stopped container's task, container, snapshot
// and log files, as kubelet's removeContainer does (the log goes with the
// instance: the pod keeps the current and the previous one).
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	ctx = r.withNamespace(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		r.dropCopier(id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	switch {
	case err == nil:
		st, err := task.Status(ctx)
		if err != nil {
			return fmt.Errorf("remove container %q: %w", id, err)
		}
		if st.Status == containerd.Running || st.Status == containerd.Paused {
			return fmt.Errorf("remove container %q: it is %s; stop it first", id, st.Status)
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %q: delete task: %w", id, err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	r.dropCopier(id)
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	if err := removeAll(r.fifoDir(id)); err != nil {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	// After dropCopier: the copier has closed the file.
	if path := labels[LabelLogPath]; path != "" {
		if err := logs.RemoveFiles(path); err != nil {
			return fmt.Errorf("remove container %q: %w", id, err)
		}
	}
	return nil
}
