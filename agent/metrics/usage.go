package metrics

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/store"
)

// CPU usage is a rate over a window between two samples. metrics-server
// scrapes every 15 s; the agent samples on demand and keeps the samples so
// that windows are about that long, never shorter than minWindow (a first
// request samples twice, minWindow apart) nor older than maxWindow (an
// average over an hour says little about now).
const (
	minWindow    = time.Second
	targetWindow = 15 * time.Second
	maxWindow    = time.Minute
	keptSamples  = 3
)

// sample is one reading of the node and its running containers.
type sample struct {
	at         time.Time
	node       nodeSample
	containers map[string]runtime.ContainerStats // by container ID
}

func (m *Metrics) sample(ctx context.Context) (sample, error) {
	stats, err := m.stats.ContainerStats(ctx)
	if err != nil {
		return sample{}, err
	}
	node, err := m.readNode()
	if err != nil {
		return sample{}, err
	}
	s := sample{at: m.now(), node: node, containers: make(map[string]runtime.ContainerStats, len(stats))}
	for _, c := range stats {
		s.containers[c.ID] = c
	}
	return s, nil
}

// window returns a base sample and a current one at least minWindow apart
// in which every current container has a base; it waits minWindow and
// samples again when the kept samples do not do.
func (m *Metrics) window(ctx context.Context) (base, cur sample, err error) {
	cur, err = m.sample(ctx)
	if err != nil {
		return sample{}, sample{}, err
	}
	m.mu.Lock()
	base, ok := m.baseFor(cur)
	m.mu.Unlock()
	if !ok {
		t := time.NewTimer(minWindow)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return sample{}, sample{}, ctx.Err()
		}
		base = cur
		if cur, err = m.sample(ctx); err != nil {
			return sample{}, sample{}, err
		}
	}
	m.mu.Lock()
	m.keep(base)
	m.keep(cur)
	m.mu.Unlock()
	return base, cur, nil
}

// baseFor picks the newest kept sample at least targetWindow old, else the
// oldest at least minWindow old, within maxWindow and covering every
// container of cur.
func (m *Metrics) baseFor(cur sample) (sample, bool) {
	usable := func(s sample) bool {
		age := cur.at.Sub(s.at)
		if age < minWindow || age > maxWindow {
			return false
		}
		for id := range cur.containers {
			if _, ok := s.containers[id]; !ok {
				return false
			}
		}
		return true
	}
	for i := len(m.samples) - 1; i >= 0; i-- {
		if s := m.samples[i]; cur.at.Sub(s.at) >= targetWindow && usable(s) {
			return s, true
		}
	}
	for _, s := range m.samples {
		if usable(s) {
			return s, true
		}
	}
	return sample{}, false
}

// keep remembers s when it is targetWindow newer than the newest kept one
// (or none is kept), so kept samples stay about a window apart.
func (m *Metrics) keep(s sample) {
	if n := len(m.samples); n > 0 {
		newest := m.samples[n-1]
		if !s.at.After(newest.at) || s.at.Sub(newest.at) < targetWindow && len(m.samples) > 1 {
			return
		}
	}
	m.samples = append(m.samples, s)
	if len(m.samples) > keptSamples {
		m.samples = slices.Delete(m.samples, 0, len(m.samples)-keptSamples)
	}
}

// NodeMetrics returns the node's usage: CPU as the rate of busy time in
// /proc/stat over the window, memory as MemTotal - MemAvailable.
// metrics-server reports the root cgroup's working set instead; on a board
// whose memory is nearly all pods the two are close, and /proc needs no
// cgroup hierarchy.
func (m *Metrics) NodeMetrics(ctx context.Context) (NodeMetrics, error) {
	base, cur, err := m.window(ctx)
	if err != nil {
		return NodeMetrics{}, fmt.Errorf("node metrics: %w", err)
	}
	elapsed := cur.at.Sub(base.at)
	cores := (cur.node.busySeconds - base.node.busySeconds) / elapsed.Seconds()
	used := uint64(0)
	if cur.node.memTotal > cur.node.memAvail {
		used = cur.node.memTotal - cur.node.memAvail
	}
	nm := NodeMetrics{
		TypeMeta:   metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: GroupVersion},
		ObjectMeta: metav1.ObjectMeta{Name: m.nodeName, CreationTimestamp: metav1.NewTime(cur.at)},
		Timestamp:  metav1.NewTime(cur.at),
		Window:     metav1.Duration{Duration: elapsed},
		Usage:      usage(cores, used),
	}
	if o, ok := m.store.Get(store.KindNode, "", m.nodeName); ok {
		if n, ok := o.(*corev1.Node); ok {
			nm.Labels = maps.Clone(n.Labels)
		}
	}
	return nm, nil
}

// PodMetrics returns the usage of the pods in namespace ("" = all) that
// have running containers: per container, the CPU rate over the window and
// the memory working set (what metrics-server reports), sorted by
// namespace and name. Labels come from the pod, for label selectors.
func (m *Metrics) PodMetrics(ctx context.Context, namespace string) ([]PodMetrics, error) {
	base, cur, err := m.window(ctx)
	if err != nil {
		return nil, fmt.Errorf("pod metrics: %w", err)
	}
	pods := map[types.UID]*PodMetrics{}
	ids := slices.Sorted(maps.Keys(cur.containers))
	for _, id := range ids {
		c := cur.containers[id]
		b, ok := base.containers[id]
		if !ok || (namespace != "" && c.Pod.Namespace != namespace) {
			continue
		}
		elapsed := c.Timestamp.Sub(b.Timestamp)
		if elapsed <= 0 || c.CPUUsageNanoseconds < b.CPUUsageNanoseconds {
			continue
		}
		pm := pods[c.Pod.UID]
		if pm == nil {
			pm = &PodMetrics{
				TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: GroupVersion},
				ObjectMeta: metav1.ObjectMeta{Name: c.Pod.Name, Namespace: c.Pod.Namespace, CreationTimestamp: metav1.NewTime(cur.at)},
				Timestamp:  metav1.NewTime(c.Timestamp),
				Window:     metav1.Duration{Duration: elapsed},
			}
			if o, ok := m.store.Get(store.KindPod, c.Pod.Namespace, c.Pod.Name); ok {
				if p, ok := o.(*corev1.Pod); ok {
					pm.Labels = maps.Clone(p.Labels)
				}
			}
			pods[c.Pod.UID] = pm
		}
		cores := float64(c.CPUUsageNanoseconds-b.CPUUsageNanoseconds) / float64(elapsed.Nanoseconds())
		pm.Containers = append(pm.Containers, ContainerMetrics{Name: c.Name, Usage: usage(cores, c.MemoryWorkingSetBytes)})
	}
	out := make([]PodMetrics, 0, len(pods))
	for _, pm := range pods {
		slices.SortFunc(pm.Containers, func(a, b ContainerMetrics) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, *pm)
	}
	slices.SortFunc(out, func(a, b PodMetrics) int {
		if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out, nil
}

// usage is a ResourceList as metrics-server builds it: CPU in nanocores,
// memory in bytes (BinarySI).
func usage(cores float64, memoryBytes uint64) corev1.ResourceList {
	if cores < 0 {
		cores = 0
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(cores*1e9), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(memoryBytes), resource.BinarySI),
	}
}
