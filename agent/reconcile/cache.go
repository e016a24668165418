package reconcile

import (
	"context"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// podCache is the node's last relist, shared by the workers (kubelet's
// PLEG cache) so that a pod's sync costs its own containers, not a list of
// the whole node. It is kept current by the workers' own results (a
// started container, a created sandbox, a removal) and by relists: the
// periodic one, and one on demand when a pod was marked stale (a runtime
// event or a stop, whose outcome only a list tells). Concurrent demands
// share one list.
type podCache struct {
	rt runtime.Runtime

	listMu sync.Mutex // one list at a time; waiters reuse its result

	mu     sync.Mutex
	loaded bool
	epoch  uint64 // incremented when a list starts
	pods   map[types.UID]podSnapshot
	// touched is the epoch of a pod's last local update or staleness mark:
	// a list that started at or before it may not show it.
	touched map[types.UID]uint64
	stale   map[types.UID]bool
}

func newPodCache(rt runtime.Runtime) *podCache {
	return &podCache{rt: rt, pods: map[types.UID]podSnapshot{}, touched: map[types.UID]uint64{}, stale: map[types.UID]bool{}}
}

// get returns a copy of the pod's snapshot, relisting first when the
// cache was never loaded or the pod is stale.
func (c *podCache) get(ctx context.Context, uid types.UID) (podSnapshot, error) {
	c.mu.Lock()
	fresh := c.loaded && !c.stale[uid]
	c.mu.Unlock()
	if !fresh {
		c.listMu.Lock()
		// A list that finished while this waited may have served it.
		c.mu.Lock()
		fresh = c.loaded && !c.stale[uid]
		c.mu.Unlock()
		var err error
		if !fresh {
			_, err = c.relistLocked(ctx)
		}
		c.listMu.Unlock()
		if err != nil {
			return podSnapshot{}, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pods[uid].clone(), nil
}

// relist lists the runtime and returns the whole node's snapshot.
func (c *podCache) relist(ctx context.Context) (map[types.UID]podSnapshot, error) {
	c.listMu.Lock()
	defer c.listMu.Unlock()
	return c.relistLocked(ctx)
}

func (c *podCache) relistLocked(ctx context.Context) (map[types.UID]podSnapshot, error) {
	c.mu.Lock()
	c.epoch++
	started := c.epoch
	c.mu.Unlock()
	snap, err := listRuntime(ctx, c.rt)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loaded = true
	for uid := range c.pods {
		if _, ok := snap.pods[uid]; !ok && c.touched[uid] < started {
			delete(c.pods, uid)
			delete(c.touched, uid)
		}
	}
	for uid, p := range snap.pods {
		if c.touched[uid] >= started {
			continue // updated since the list began: keep what is newer
		}
		c.pods[uid] = p
		delete(c.touched, uid)
		delete(c.stale, uid)
	}
	for uid := range c.stale {
		if _, ok := snap.pods[uid]; !ok && c.touched[uid] < started {
			delete(c.stale, uid)
		}
	}
	out := make(map[types.UID]podSnapshot, len(c.pods))
	for uid, p := range c.pods {
		out[uid] = p
	}
	return out, nil
}

// markStale makes the pod's next get relist (its containers changed in a
// way only a list reports).
func (c *podCache) markStale(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stale[uid] = true
	c.touched[uid] = c.epoch
}

// update applies a worker's own result to the pod's snapshot.
func (c *podCache) update(uid types.UID, ref runtime.PodRef, f func(p *podSnapshot)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pods[uid].clone()
	p.ref = ref
	f(&p)
	c.pods[uid] = p
	c.touched[uid] = c.epoch
}

func (p podSnapshot) clone() podSnapshot {
	out := p
	out.containers = slices.Clone(p.containers)
	if p.sandbox != nil {
		sb := *p.sandbox
		out.sandbox = &sb
	}
	return out
}

// setContainer replaces the instance with the same ID, or adds it.
func (p *podSnapshot) setContainer(st runtime.ContainerStatus) {
	for i := range p.containers {
		if p.containers[i].ID == st.ID {
			p.containers[i] = st
			return
		}
	}
	p.containers = append(p.containers, st)
}

func (p *podSnapshot) removeContainer(id string) {
	p.containers = slices.DeleteFunc(p.containers, func(c runtime.ContainerStatus) bool { return c.ID == id })
}
