package podagent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/reconcile"
	"github.com/podboot/podboot/agent/runtime/fake"
	"github.com/podboot/podboot/agent/store"
)

// TestFlashSetImageWithTheReconcileManager is `kubectl set image pod/web
// main=nginx:1.29` through the real reconcile manager on the fake runtime:
// the pod keeps its UID, Save answers it with the new image (kubectl patch
// prints "patched", not "patched (no change)"), and only that container is
// restarted, once, with the new image; the file's other pod is untouched.
func TestFlashSetImageWithTheReconcileManager(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pods.yaml"), []byte(webAndDB), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st := store.New(nil)
	rec := store.NewRecorder(st, "board-1", nil)
	rt := fake.New()
	rt.SetPullable("nginx")
	rt.SetPullable("nginx:1.29")
	rt.SetPullable("postgres")
	mgr, err := reconcile.NewManager(reconcile.Config{Runtime: rt, Pods: storePublisher{st: st, log: log}, Events: rec,
		LogRoot: t.TempDir(), NodeName: "board-1", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "board-1"}}
	apply := &manifestApplier{st: st, mgr: mgr, rec: rec, node: node, log: log}
	opts := manifest.Options{NodeName: "board-1"}
	w := manifest.NewWatcher(dir, opts, time.Hour, log)
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error { return w.Run(gctx, apply.apply) })
	t.Cleanup(func() {
		cancel()
		_ = g.Wait()
	})
	f := newFlash(w, apply, st, rec, opts, log)
	if err := f.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	// waitPod polls the store until ok holds for the pod.
	waitPod := func(name, what string, ok func(p *corev1.Pod) bool) *corev1.Pod {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if o, found := st.Get(store.KindPod, "default", name); found && ok(o.(*corev1.Pod)) {
				return o.(*corev1.Pod)
			}
			if time.Now().After(deadline) {
				o, _ := st.Get(store.KindPod, "default", name)
				t.Fatalf("%s never %s: %+v\ncalls %v", name, what, o, rt.Calls())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	running := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }
	before := waitPod("web", "Running", running)
	waitPod("db", "Running", running)
	calls := len(rt.Calls())

	pod := before.DeepCopy()
	pod.Spec.Containers[0].Image = "nginx:1.29"
	out, err := f.Save(t.Context(), pod, api.WriteInfo{User: "admin", FieldManager: "kubectl-set"})
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.UID != before.UID || got.Spec.Containers[0].Image != "nginx:1.29" || got.ResourceVersion == before.ResourceVersion {
		t.Errorf("Save answered uid %s image %s rv %s; want uid %s, nginx:1.29, rv after %s",
			got.UID, got.Spec.Containers[0].Image, got.ResourceVersion, before.UID, before.ResourceVersion)
	}
	after := waitPod("web", "restarted with nginx:1.29", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return running(p) && len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].State.Running != nil
	})
	if after.UID != before.UID || after.Status.StartTime == nil || !after.Status.StartTime.Equal(before.Status.StartTime) {
		t.Errorf("web after set image: uid %s started %v; want the same pod (uid %s, started %v)", after.UID, after.Status.StartTime, before.UID, before.Status.StartTime)
	}
	var lifecycle []string
	for _, c := range rt.Calls()[calls:] {
		if strings.HasPrefix(c, "StartContainer") || strings.HasPrefix(c, "StopContainer") || strings.HasPrefix(c, "RunSandbox") || strings.HasPrefix(c, "RemoveSandbox") {
			lifecycle = append(lifecycle, strings.Fields(c)[0]+" "+strings.Fields(c)[1])
		}
	}
	want := []string{"StopContainer", "StartContainer default/web/main"}
	if len(lifecycle) != 2 || !strings.HasPrefix(lifecycle[0], want[0]) || lifecycle[1] != want[1] {
		t.Errorf("runtime calls after set image: %q, want a stop of web's container and %q", lifecycle, want[1])
	}
}
