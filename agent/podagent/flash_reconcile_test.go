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

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/reconcile"
	"github.com/podboot/podboot/agent/runtime/fake"
	"github.com/podboot/podboot/agent/store"
)

// TestFlashLabelWithTheReconcileManager is `kubectl label` through the
// real reconcile manager on the fake runtime: Save answers the pod
// republished with the label (same UID, Running), and its container was
// never restarted.
func TestFlashLabelWithTheReconcileManager(t *testing.T) {
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
	rt.SetPullable("nginx") // untagged: pulled Always
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
	var before *corev1.Pod
	deadline := time.Now().Add(10 * time.Second)
	for {
		if o, ok := st.Get(store.KindPod, "default", "web"); ok && o.(*corev1.Pod).Status.Phase == corev1.PodRunning {
			before = o.(*corev1.Pod)
			break
		}
		if time.Now().After(deadline) {
			o, _ := st.Get(store.KindPod, "default", "web")
			t.Fatalf("web never Running: %+v\ncalls %v", o, rt.Calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	calls := len(rt.Calls())

	pod := before.DeepCopy()
	pod.Labels = map[string]string{"env": "debug"}
	start := time.Now()
	out, err := f.Save(t.Context(), pod, labeller)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	got := out.(*corev1.Pod)
	if got.UID != before.UID || got.Labels["env"] != "debug" || got.ResourceVersion == before.ResourceVersion || got.Status.Phase != corev1.PodRunning {
		t.Errorf("Save answered uid %s labels %v rv %s phase %s; want uid %s, env=debug, rv after %s, Running",
			got.UID, got.Labels, got.ResourceVersion, got.Status.Phase, before.UID, before.ResourceVersion)
	}
	if took > 2*time.Second {
		t.Errorf("Save took %v: it waited for a republish that should be at once", took)
	}
	for _, c := range rt.Calls()[calls:] {
		if strings.Contains(c, "Stop") || strings.Contains(c, "Create") || strings.Contains(c, "Start") {
			t.Errorf("a label restarted a container: runtime call %q", c)
		}
	}
}
