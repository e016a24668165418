package fake

import (
	"context"
	"fmt"

	"github.com/podboot/podboot/agent/runtime"
)

// SetUsage sets the figures ContainerStats reports for container id: the
// usage fields of u (CPU, memory, OOM events); identity and Timestamp come
// from the container and the clock.
func (r *Runtime) SetUsage(id string, u runtime.ContainerStats) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[id]; !ok {
		return fmt.Errorf("set usage of container %s: no such container", id)
	}
	if r.usage == nil {
		r.usage = map[string]runtime.ContainerStats{}
	}
	r.usage[id] = u
	return nil
}

// ContainerStats implements runtime.StatsReader: every running container,
// in creation order, with the usage SetUsage gave it (zero otherwise).
func (r *Runtime) ContainerStats(ctx context.Context) ([]runtime.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	var out []runtime.ContainerStats
	for _, id := range r.order {
		c := r.containers[id].status
		if c.State != runtime.ContainerRunning {
			continue
		}
		s := r.usage[id]
		s.Pod, s.Name, s.ID, s.Image = c.Pod, c.Name, c.ID, c.Image.Ref
		s.StartedAt, s.Timestamp = c.StartedAt, now
		out = append(out, s)
	}
	return out, nil
}
