package metrics

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/runtime/fake"
	"github.com/podboot/podboot/agent/store"
)

// fixture is a node with pod default/web (containers app and side, with
// usage) and pod kube-system/dns (one container), on a copy of
// testdata/proc.
type fixture struct {
	m     *Metrics
	rt    *fake.Runtime
	st    *store.Store
	proc  string
	ids   map[string]string // container name → ID
	start time.Time
}

var (
	webPod = runtime.PodRef{UID: "uid-web", Namespace: "default", Name: "web"}
	dnsPod = runtime.PodRef{UID: "uid-dns", Namespace: "kube-system", Name: "dns"}
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{rt: fake.New(), st: store.New(time.Now), ids: map[string]string{}, start: time.Now()}
	f.proc = t.TempDir()
	for _, name := range []string{"stat", "meminfo"} {
		b, err := os.ReadFile(filepath.Join("testdata", "proc", name))
		if err != nil {
			t.Fatal(err)
		}
		f.writeProc(t, name, string(b))
	}
	img := fake.ImageFor("busybox:1.36")
	for _, c := range []struct {
		pod  runtime.PodRef
		name string
	}{{webPod, "app"}, {webPod, "side"}, {dnsPod, "dns"}} {
		if _, err := f.rt.RunSandbox(ctx, runtime.SandboxConfig{Pod: c.pod}); err != nil {
			t.Fatal(err)
		}
		st, err := f.rt.StartContainer(ctx, runtime.ContainerConfig{Pod: c.pod, Spec: corev1.Container{Name: c.name}, Image: img})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[c.name] = st.ID
	}
	for _, p := range []struct {
		ref    runtime.PodRef
		phase  corev1.PodPhase
		labels map[string]string
	}{
		{webPod, corev1.PodRunning, map[string]string{"app": "web"}},
		{dnsPod, corev1.PodRunning, map[string]string{"app": "dns"}},
		{runtime.PodRef{UID: "uid-done", Namespace: "default", Name: "done"}, corev1.PodSucceeded, nil},
		{runtime.PodRef{UID: "uid-new", Namespace: "default", Name: "new"}, "", nil},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.ref.Namespace, Name: p.ref.Name, UID: types.UID(p.ref.UID), Labels: p.labels},
			Status:     corev1.PodStatus{Phase: p.phase},
		}
		if err := f.st.Put(pod); err != nil {
			t.Fatal(err)
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "board-1", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
	if err := f.st.Put(node); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{NodeName: "board-1", Stats: f.rt, Store: f.st, ProcRoot: f.proc})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

func (f *fixture) writeProc(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.proc, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setUsage sets a container's cumulative CPU (seconds) and memory.
func (f *fixture) setUsage(t *testing.T, name string, cpuSeconds float64, workingSet uint64) {
	t.Helper()
	err := f.rt.SetUsage(f.ids[name], runtime.ContainerStats{
		CPUUsageNanoseconds:   uint64(cpuSeconds * 1e9),
		MemoryUsageBytes:      workingSet + 1<<20,
		MemoryWorkingSetBytes: workingSet,
		MemoryRSSBytes:        workingSet / 2,
		OOMEvents:             1,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
