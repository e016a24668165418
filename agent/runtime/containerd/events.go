package containerd

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

const (
	topicExit = "/tasks/exit"
	topicOOM  = "/tasks/oom"
)

// Events streams container exits and OOM kills until ctx ends. Every
// subscriber gets every event; a slow subscriber delays the others but
// loses nothing.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, error) {
	if r.ctx.Err() != nil {
		return nil, fmt.Errorf("subscribe to runtime events: runtime closed")
	}
	ch := make(chan runtime.Event, 64)
	r.mu.Lock()
	r.subs[ch] = ctx
	r.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-r.ctx.Done():
		}
		r.mu.Lock()
		delete(r.subs, ch)
		r.mu.Unlock()
		// Closed only after no publisher can hold it.
		r.publishMu.Lock()
		close(ch)
		r.publishMu.Unlock()
	}()
	return ch, nil
}

// watchEvents is the runtime's own subscription to containerd's task
// events: it records OOM kills as a container label (so an OOM is never
// missed, whoever consumes Events) and fans events out to subscribers. It
// resubscribes when containerd restarts.
func (r *Runtime) watchEvents() {
	filters := []string{
		fmt.Sprintf(`topic==%q,namespace==%q`, topicExit, r.cfg.Namespace),
		fmt.Sprintf(`topic==%q,namespace==%q`, topicOOM, r.cfg.Namespace),
	}
	for r.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		envs, errs := r.client.Subscribe(ctx, filters...)
		err := r.handleEvents(envs, errs)
		cancel()
		if r.ctx.Err() != nil {
			return
		}
		r.log.Warn("containerd event subscription ended; resubscribing", "err", err)
		select {
		case <-r.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Runtime) handleEvents(envs <-chan *events.Envelope, errs <-chan error) error {
	for {
		select {
		case err := <-errs:
			return err
		case env := <-envs:
			if env == nil {
				continue
			}
			ev, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				r.log.Warn("decode containerd event", "topic", env.Topic, "err", err)
				continue
			}
			switch e := ev.(type) {
			case *apievents.TaskExit:
				if e.ID != "" && e.ID != e.ContainerID {
					continue // an exec'd process, not the container
				}
				r.publish(runtime.EventContainerExited, e.ContainerID)
			case *apievents.TaskOOM:
				r.recordOOM(e.ContainerID)
				r.publish(runtime.EventContainerOOM, e.ContainerID)
			}
		}
	}
}

// recordOOM labels the container as OOM-killed.
func (r *Runtime) recordOOM(id string) {
	ctr, err := r.client.LoadContainer(r.ctx, id)
	if err != nil {
		r.log.Warn("record OOM kill", "container", id, "err", err)
		return
	}
	if _, err := ctr.SetLabels(r.ctx, map[string]string{LabelOOM: "true"}); err != nil {
		r.log.Warn("record OOM kill", "container", id, "err", err)
	}
}

// publish sends the event to every subscriber, if the container is one of
// this agent's.
func (r *Runtime) publish(typ runtime.EventType, id string) {
	ctr, err := r.client.LoadContainer(r.ctx, id)
	if err != nil {
		return // removed meanwhile, or not ours
	}
	labels, err := ctr.Labels(r.ctx)
	if err != nil || labels[LabelPodUID] == "" {
		return
	}
	ev := runtime.Event{Type: typ, ContainerID: id, PodUID: types.UID(labels[LabelPodUID])}
	r.publishMu.Lock()
	defer r.publishMu.Unlock()
	r.mu.Lock()
	subs := make(map[chan runtime.Event]context.Context, len(r.subs))
	for ch, ctx := range r.subs {
		subs[ch] = ctx
	}
	r.mu.Unlock()
	for ch, ctx := range subs {
		select {
		case ch <- ev:
		case <-ctx.Done():
		case <-r.ctx.Done():
			return
		}
	}
}
