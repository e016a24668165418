package reconcile

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/runtime/fake"
)

// fakeCgroups records the pod cgroups the manager asks for.
type fakeCgroups struct {
	mu      sync.Mutex
	err     error // EnsurePod fails with it while set
	pods    map[types.UID]string
	removed []types.UID
}

func (f *fakeCgroups) EnsurePod(pod *corev1.Pod) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	if f.pods == nil {
		f.pods = map[types.UID]string{}
	}
	path := "/kubepods/burstable/pod" + string(pod.UID)
	f.pods[pod.UID] = path
	return path, nil
}

func (f *fakeCgroups) RemovePod(uid types.UID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pods, uid)
	f.removed = append(f.removed, uid)
	return nil
}

func (f *fakeCgroups) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeCgroups) has(uid types.UID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.pods[uid]
	return ok
}

// TestContainerResources: every container is started in its pod's cgroup
// with kubelet's values for it, and the pod cgroup goes with the pod.
func TestContainerResources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		cg := &fakeCgroups{}
		e.m.cfg.Cgroups = cg
		e.m.cfg.MemoryCapacity = 1 << 30

		pod := newTestPod("u1", corev1.RestartPolicyAlways, "app", "side")
		pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		}
		e.m.SetDesired([]*corev1.Pod{pod})
		e.run()
		defer e.stop()

		want := map[string]runtime.ContainerResources{
			// 250m → 256 shares, 500m → 50 ms per 100 ms; a Burstable
			// container asking for 1/16 of memory scores 1000-62.
			"app": {CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 128 << 20, OOMScoreAdj: 938},
			// No request at all: the minimum shares, no limits.
			"side": {CPUShares: 2, CPUQuota: -1, CPUPeriod: 100000, MemoryLimit: -1, OOMScoreAdj: 1000 - 1},
		}
		for name, w := range want {
			id, ok := rt.Running("u1", name)
			if !ok {
				t.Fatalf("%s not running", name)
			}
			cfg, _ := rt.Config(id)
			if cfg.Resources == nil || *cfg.Resources != w {
				t.Errorf("%s: resources %+v, want %+v", name, cfg.Resources, w)
			}
			if cfg.Sandbox.CgroupParent != "/kubepods/burstable/podu1" {
				t.Errorf("%s: cgroup parent %q, want the pod's cgroup", name, cfg.Sandbox.CgroupParent)
			}
		}

		e.m.SetDesired(nil)
		synctest.Wait()
		advance(30 * time.Second)
		if cg.has("u1") || !slices.Contains(cg.removed, "u1") {
			t.Errorf("pod cgroup not removed with the pod: removed %v", cg.removed)
		}
	})
}

// TestPodCgroupFailure: a pod whose cgroup cannot be made gets kubelet's
// FailedCreatePodContainer event, no sandbox and no container, and starts
// once the cgroup can be made.
func TestPodCgroupFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		cg := &fakeCgroups{err: errors.New(`mkdir /sys/fs/cgroup/kubepods/podu1: no space left on device`)}
		e.m.cfg.Cgroups = cg
		e.m.cfg.MemoryCapacity = 1 << 30

		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
		e.run()
		defer e.stop()

		if sbs, _ := rt.ListSandboxes(t.Context()); len(sbs) != 0 {
			t.Errorf("sandbox created without a pod cgroup: %+v", sbs)
		}
		events := strings.Join(e.rec.take(), "\n")
		if !strings.Contains(events, "Warning FailedCreatePodContainer : unable to ensure pod container exists: mkdir /sys/fs/cgroup/kubepods/podu1: no space left on device") {
			t.Errorf("events:\n%s\nwant FailedCreatePodContainer naming the cgroup and the cause", events)
		}
		if s := e.status("u1"); s.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", s.Phase)
		}

		cg.setErr(nil)
		advance(time.Minute)
		if _, ok := rt.Running("u1", "app"); !ok {
			t.Error("app not started once the pod cgroup could be made")
		}
	})
}
