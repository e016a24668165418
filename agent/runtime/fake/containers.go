package fake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// StartContainer implements runtime.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, cfg runtime.ContainerConfig) (runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("StartContainer %s/%s/%s attempt=%d", cfg.Pod.Namespace, cfg.Pod.Name, cfg.Spec.Name, cfg.Attempt)
	if _, ok := r.sandboxes[cfg.Pod.UID]; !ok {
		return runtime.ContainerStatus{}, fmt.Errorf("create container %q of pod %s: no sandbox", cfg.Spec.Name, cfg.Pod)
	}
	if err := r.createErrs[cfg.Spec.Name]; err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("create container %q of pod %s: %w", cfg.Spec.Name, cfg.Pod, err)
	}
	r.nextID++
	now := r.Now()
	st := runtime.ContainerStatus{
		ID:        fmt.Sprintf("c%04d", r.nextID),
		Pod:       cfg.Pod,
		Name:      cfg.Spec.Name,
		Attempt:   cfg.Attempt,
		Init:      cfg.Init,
		State:     runtime.ContainerRunning,
		CreatedAt: now,
		StartedAt: now,
		Image:     cfg.Image,
	}
	var err error
	if msg, ok := r.startErrors[cfg.Spec.Name]; ok {
		// containerd's CRI: a process that cannot start is exited 128,
		// reason StartError, never started.
		st.State, st.StartedAt, st.FinishedAt = runtime.ContainerExited, time.Time{}, now
		st.ExitCode, st.Reason, st.Message = 128, "StartError", msg
		err = fmt.Errorf("start container %q of pod %s: %s", cfg.Spec.Name, cfg.Pod, msg)
	}
	r.containers[st.ID] = &container{status: st, config: cfg}
	r.order = append(r.order, st.ID)
	return st, err
}

// StopContainer implements runtime.Runtime: a container exits 143 on
// SIGTERM at once, or, when it ignores SIGTERM, 137 after grace.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	r.record("StopContainer %s grace=%s", id, grace)
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("stop container %s: not found", id)
	}
	if c.status.State != runtime.ContainerRunning {
		r.mu.Unlock()
		return nil
	}
	ignore := r.ignoreTerm[c.status.Name]
	r.mu.Unlock()
	code := int32(143)
	if ignore {
		t := time.NewTimer(grace)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stop container %s: %w", id, ctx.Err())
		}
		code = 137
	}
	r.exit(id, code, false)
	return nil
}

// RemoveContainer implements runtime.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("RemoveContainer %s", id)
	c, ok := r.containers[id]
	if !ok {
		return nil
	}
	if c.status.State == runtime.ContainerRunning {
		return fmt.Errorf("remove container %s: still running", id)
	}
	delete(r.containers, id)
	for i, o := range r.order {
		if o == id {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	return nil
}

// ListContainers implements runtime.Runtime, in creation order.
// Each call costs the list cost per instance listed (SetListCost).
func (r *Runtime) ListContainers(ctx context.Context) ([]runtime.ContainerStatus, error) {
	r.mu.Lock()
	out := make([]runtime.ContainerStatus, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.containers[id].status)
	}
	r.lists++
	r.listed += len(out)
	cost := r.listCost * time.Duration(len(out))
	r.mu.Unlock()
	if cost > 0 {
		t := time.NewTimer(cost)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("list containers: %w", ctx.Err())
		}
	}
	return out, nil
}

// SetListCost makes ListContainers take d per instance it returns, as a
// real runtime's list costs a task status query per container.
func (r *Runtime) SetListCost(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listCost = d
}

// ListCount returns how many times ListContainers was called and how many
// instances those calls returned in all.
func (r *Runtime) ListCount() (calls, instances int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lists, r.listed
}

// Config returns the configuration a container was started with.
func (r *Runtime) Config(id string) (runtime.ContainerConfig, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerConfig{}, false
	}
	return c.config, true
}

// Exit makes a running container exit with code.
func (r *Runtime) Exit(id string, code int32) error { return r.exitChecked(id, code, false) }

// OOMKill makes a running container die from the OOM killer (exit 137).
func (r *Runtime) OOMKill(id string) error { return r.exitChecked(id, 137, true) }

// Running returns the ID of the running instance of the pod's container
// name.
func (r *Runtime) Running(uid types.UID, name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.order {
		c := r.containers[id].status
		if c.Pod.UID == uid && c.Name == name && c.State == runtime.ContainerRunning {
			return id, true
		}
	}
	return "", false
}

// ExitByName makes the running instance of the pod's container name exit
// with code.
func (r *Runtime) ExitByName(uid types.UID, name string, code int32) error {
	id, ok := r.Running(uid, name)
	if !ok {
		return fmt.Errorf("exit container %q of pod %s: not running", name, uid)
	}
	return r.Exit(id, code)
}

var errNotRunning = errors.New("not running")

func (r *Runtime) exitChecked(id string, code int32, oom bool) error {
	r.mu.Lock()
	c, ok := r.containers[id]
	running := ok && c.status.State == runtime.ContainerRunning
	r.mu.Unlock()
	if !running {
		return fmt.Errorf("exit container %s: %w", id, errNotRunning)
	}
	r.exit(id, code, oom)
	return nil
}

func (r *Runtime) exit(id string, code int32, oom bool) {
	r.mu.Lock()
	c, ok := r.containers[id]
	if !ok || c.status.State != runtime.ContainerRunning {
		r.mu.Unlock()
		return
	}
	c.status.State = runtime.ContainerExited
	c.status.ExitCode = code
	c.status.FinishedAt = r.Now()
	c.status.OOMKilled = c.status.OOMKilled || oom
	uid := c.status.Pod.UID
	// Sent under the lock so that Events cannot close a channel meanwhile.
	if oom {
		r.send(runtime.Event{Type: runtime.EventContainerOOM, ContainerID: id, PodUID: uid})
	}
	r.send(runtime.Event{Type: runtime.EventContainerExited, ContainerID: id, PodUID: uid})
	r.mu.Unlock()
}

// send never blocks: a subscriber that does not keep up misses events, as
// with a real runtime, and relies on its relist.
func (r *Runtime) send(ev runtime.Event) {
	for _, ch := range r.subscribers {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Events implements runtime.Runtime.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, error) {
	ch := make(chan runtime.Event, 256)
	r.mu.Lock()
	r.subscribers = append(r.subscribers, ch)
	r.mu.Unlock()
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, s := range r.subscribers {
			if s == ch {
				r.subscribers = append(r.subscribers[:i], r.subscribers[i+1:]...)
				break
			}
		}
		close(ch)
	}()
	return ch, nil
}
