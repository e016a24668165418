package podagent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

// fakeManager stands in for the reconcile manager as the store sees it: a
// desired pod is published at once with its metadata (a pod whose UID is
// kept keeps its status, as a metadata-only change does not restart it);
// a pod no longer desired is published terminating, with the grace
// SetDeletionGrace gave it, and stays until the test calls gone.
type fakeManager struct {
	st *store.Store

	mu      sync.Mutex
	grace   map[types.UID]int64
	calls   []string // "grace <uid> <s>", "desired <n>"
	desired map[types.UID]bool
}

func newFakeManager(st *store.Store) *fakeManager {
	return &fakeManager{st: st, grace: map[types.UID]int64{}, desired: map[types.UID]bool{}}
}

func (m *fakeManager) SetDeletionGrace(uid types.UID, seconds int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grace[uid] = seconds
	m.calls = append(m.calls, fmt.Sprintf("grace %s %d", uid, seconds))
	objs, _ := m.st.List(store.KindPod, "")
	for _, o := range objs {
		if p := o.(*corev1.Pod); p.UID == uid && p.DeletionTimestamp != nil && *p.DeletionGracePeriodSeconds > seconds {
			p.DeletionGracePeriodSeconds = &seconds
			_ = m.st.Put(p)
		}
	}
}

func (m *fakeManager) SetDesired(pods []*corev1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, fmt.Sprintf("desired %d", len(pods)))
	next := map[types.UID]bool{}
	for _, p := range pods {
		next[p.UID] = true
		out := p.DeepCopy()
		out.Status = corev1.PodStatus{Phase: corev1.PodRunning}
		if o, ok := m.st.Get(store.KindPod, p.Namespace, p.Name); ok && o.(*corev1.Pod).UID != p.UID {
			continue // the replacement waits for the old pod to go
		}
		_ = m.st.Put(out)
	}
	objs, _ := m.st.List(store.KindPod, "")
	for _, o := range objs {
		p := o.(*corev1.Pod)
		if next[p.UID] || p.DeletionTimestamp != nil {
			continue
		}
		grace := int64(30)
		if g, ok := m.grace[p.UID]; ok {
			grace = g
		}
		at := metav1.Now()
		p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &at, &grace
		_ = m.st.Put(p)
	}
	m.desired = next
}

// gone removes a terminating pod from the store, as its worker does once
// its containers stopped.
func (m *fakeManager) gone(t *testing.T, namespace, name string) {
	t.Helper()
	if err := m.st.Delete(store.KindPod, namespace, name); err != nil {
		t.Fatal(err)
	}
}

type flashEnv struct {
	t     *testing.T
	dir   string // the flash's pods directory
	st    *store.Store
	mgr   *fakeManager
	flash *flash
	logs  *bytes.Buffer
}

func newFlashEnv(t *testing.T, files map[string]string) *flashEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		// Old enough to be read at once (no settling).
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := store.New(nil)
	rec := store.NewRecorder(st, "board-1", nil)
	mgr := newFakeManager(st)
	node := &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "board-1"}}
	apply := &manifestApplier{st: st, mgr: mgr, rec: rec, node: node, log: log}
	opts := manifest.Options{NodeName: "board-1"}
	w := manifest.NewWatcher(dir, opts, time.Hour, log)
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx, apply.apply) })
	g.Go(func() error { return apply.finalizeNamespaces(gctx) })
	t.Cleanup(func() {
		cancel()
		if err := g.Wait(); err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	e := &flashEnv{t: t, dir: dir, st: st, mgr: mgr, flash: newFlash(w, apply, st, rec, opts, log), logs: &logs}
	e.refresh()
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *flashEnv) refresh() {
	e.t.Helper()
	if err := e.flash.Refresh(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *flashEnv) pod(name string) *corev1.Pod {
	e.t.Helper()
	o, ok := e.st.Get(store.KindPod, "default", name)
	if !ok {
		e.t.Fatalf("the store holds no pod %s", name)
	}
	return o.(*corev1.Pod)
}

func (e *flashEnv) file(name string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// events are the store's events as "reason object: message".
func (e *flashEnv) events() []string {
	objs, _ := e.st.List(store.KindEvent, "")
	var out []string
	for _, o := range objs {
		ev := o.(*corev1.Event)
		out = append(out, fmt.Sprintf("%s %s %s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message))
	}
	return out
}

func flashPod(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: main\n    image: %s\n", name, image)
}

const webAndDB = "# the front end\n" + "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: main\n    image: nginx\n" +
	"---\n# the database, keep it\n" + "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db   # primary\nspec:\n  containers:\n  - name: main\n    image: postgres\n"

var labeller = api.WriteInfo{User: "admin", FieldManager: "kubectl-label"}

// TestFlashLabelKeepsThePodAndTheOtherDocuments is `kubectl label po web
// env=debug`: the pod keeps its UID (so it keeps running), the store
// shows the label with a new resourceVersion, the file's other document is
// byte for byte as the person wrote it, and an event names the file.
func TestFlashLabelKeepsThePodAndTheOtherDocuments(t *testing.T) {
	e := newFlashEnv(t, map[string]string{"pods.yaml": webAndDB})
	before := e.pod("web")
	pod := before.DeepCopy()
	pod.Labels = map[string]string{"env": "debug"}
	out, err := e.flash.Save(t.Context(), pod, labeller)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.UID != before.UID || got.Labels["env"] != "debug" || got.ResourceVersion == before.ResourceVersion || got.Status.Phase != corev1.PodRunning {
		t.Errorf("Save returned uid %s labels %v rv %s phase %s; want uid %s, env=debug, a new rv (was %s), Running",
			got.UID, got.Labels, got.ResourceVersion, got.Status.Phase, before.UID, before.ResourceVersion)
	}
	if diff := cmp.Diff(got, e.pod("web")); diff != "" {
		t.Errorf("Save's answer is not the store's pod (-answer +store):\n%s", diff)
	}
	file := e.file("pods.yaml")
	if !strings.HasSuffix(file, "---\n# the database, keep it\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db   # primary\nspec:\n  containers:\n  - name: main\n    image: postgres\n") ||
		!strings.HasPrefix(file, "# the front end\n") {
		t.Errorf("pods.yaml lost the person's bytes:\n%s", file)
	}
	// Read back from the flash (a reboot): same UID, with the label.
	again := manifest.Decode("pods.yaml", []byte(file), manifest.Options{NodeName: "board-1"})
	if len(again.Pods) != 2 || again.Pods[1].Name != "web" || again.Pods[1].UID != before.UID || again.Pods[1].Labels["env"] != "debug" {
		t.Errorf("pods.yaml decodes to %+v, want web with uid %s and env=debug", again.Pods, before.UID)
	}
	want := []string{`ManifestSaved Pod web: Saved to manifest pods/pods.yaml, document 0, by user "admin" (kubectl-label)`}
	if diff := cmp.Diff(want, e.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestFlashCreate is `kubectl create`: new objects get files of their own,
// ConfigMaps and Secrets reach the store, a Secret's file is root's only
// and its values are in no log or event.
func TestFlashCreate(t *testing.T) {
	e := newFlashEnv(t, nil)
	creator := api.WriteInfo{User: "admin", FieldManager: "kubectl-create"}
	objs := []runtime.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kubia-manual", Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kubia", Image: "luksa/kubia"}}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"k": "v"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("hunter2-value")}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "custom-namespace"}},
	}
	for _, o := range objs {
		if _, err := e.flash.Save(t.Context(), o, creator); err != nil {
			t.Fatalf("Save %T: %v", o, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "*"))
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	if diff := cmp.Diff([]string{"configmap_default_cfg.yaml", "namespace_custom-namespace.yaml", "pod_default_kubia-manual.yaml", "secret_default_creds.yaml"}, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	for _, k := range []struct{ kind, ns, name string }{
		{store.KindPod, "default", "kubia-manual"}, {store.KindConfigMap, "default", "cfg"},
		{store.KindSecret, "default", "creds"}, {store.KindNamespace, "", "custom-namespace"},
	} {
		if _, ok := e.st.Get(k.kind, k.ns, k.name); !ok {
			t.Errorf("the store holds no %s %s/%s", k.kind, k.ns, k.name)
		}
	}
	if info, err := os.Stat(filepath.Join(e.dir, "secret_default_creds.yaml")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the Secret's file: %v, mode %v, want 0600", err, info.Mode().Perm())
	}
	if all := e.logs.String() + strings.Join(e.events(), "\n"); strings.Contains(all, "hunter2-value") || strings.Contains(all, "aHVudGVyMi12YWx1ZQ") {
		t.Errorf("the Secret's value reached a log or an event:\n%s", all)
	}
	// A dry run writes nothing.
	dry := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dry", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	out, err := e.flash.Save(t.Context(), dry, api.WriteInfo{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.(*corev1.Pod); p.UID == "" || p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("a dry run answers the pod as it would be stored (uid, defaults); got uid %q restartPolicy %q", p.UID, p.Spec.RestartPolicy)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "pod_default_dry.yaml")); !os.IsNotExist(err) {
		t.Errorf("a dry run wrote a file: %v", err)
	}
}

func TestFlashRefusals(t *testing.T) {
	e := newFlashEnv(t, map[string]string{"pods.yaml": webAndDB})
	noImage := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	_, err := e.flash.Save(t.Context(), noImage, api.WriteInfo{})
	if !apierrors.IsInvalid(err) || err.Error() != `Pod "x" is invalid: spec.containers[0].image: Required value` {
		t.Errorf("Save of a pod without an image: %v, want kubectl's Invalid", err)
	}
	if _, err := e.flash.Remove(t.Context(), "Pod", "default", "nothere", nil, api.WriteInfo{}); !apierrors.IsNotFound(err) {
		t.Errorf("Remove of a pod no document defines: %v, want NotFound", err)
	}
	if _, err := e.flash.Remove(t.Context(), "Namespace", "", "default", nil, api.WriteInfo{}); !apierrors.IsForbidden(err) ||
		err.Error() != `namespaces "default" is forbidden: this namespace may not be deleted` {
		t.Errorf("Remove of namespace default: %v, want the API server's Forbidden", err)
	}

	// A person edits the file after the API read it: the write is refused
	// and the person's edit stays.
	e.refresh()
	rv := e.pod("db").ResourceVersion
	edited := strings.Replace(webAndDB, "image: postgres", "image: postgres:17", 1)
	if err := os.WriteFile(filepath.Join(e.dir, "pods.yaml"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := e.pod("web").DeepCopy()
	pod.Labels = map[string]string{"env": "debug"}
	_, err = e.flash.Save(t.Context(), pod, labeller)
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "pods.yaml changed since it was read") {
		t.Errorf("Save after a person's edit: %v, want a Conflict naming pods.yaml", err)
	}
	if got := e.file("pods.yaml"); got != edited {
		t.Errorf("pods.yaml after a refused write:\n%s\nwant the person's edit", got)
	}
	// Once Refresh returns, the edit is applied (by the watcher, which may
	// have seen it already, or by Refresh): the db pod's resourceVersion
	// moved on (its new UID replaces it), and the write goes through.
	e.refresh()
	if got := e.pod("db"); got.ResourceVersion == rv || got.DeletionTimestamp == nil {
		t.Errorf("after Refresh db has rv %s (was %s), deletionTimestamp %v: want the old db terminating", got.ResourceVersion, rv, got.DeletionTimestamp)
	}
	if _, err := e.flash.Save(t.Context(), pod, labeller); err != nil {
		t.Errorf("Save after Refresh: %v", err)
	}
	if got := e.file("pods.yaml"); !strings.Contains(got, "image: postgres:17") || !strings.Contains(got, "env: debug") {
		t.Errorf("pods.yaml lost the person's or the API's change:\n%s", got)
	}
}

// TestFlashRemovePod is `kubectl delete po web --grace-period=0 --force`:
// the grace is given before the manager learns the pod is gone, the
// document goes, and the last document's file with it. A second delete of
// a terminating pod shortens its grace.
func TestFlashRemovePod(t *testing.T) {
	e := newFlashEnv(t, map[string]string{"pods.yaml": webAndDB, "solo.yaml": flashPod("solo", "busybox")})
	uid := e.pod("web").UID
	zero := int64(0)
	e.mgr.mu.Lock()
	e.mgr.calls = nil
	e.mgr.mu.Unlock()
	out, err := e.flash.Remove(t.Context(), "Pod", "default", "web", &zero, labeller)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := out.(*corev1.Pod); !ok || p.DeletionTimestamp == nil || *p.DeletionGracePeriodSeconds != 0 {
		t.Errorf("Remove returned %#v, want web terminating with grace 0", out)
	}
	if diff := cmp.Diff([]string{"grace " + string(uid) + " 0", "desired 2"}, e.mgr.calls); diff != "" {
		t.Errorf("manager calls (-want +got):\n%s", diff)
	}
	if got := e.file("pods.yaml"); got != "# the database, keep it\napiVersion: v1\nkind: Pod\nmetadata:\n  name: db   # primary\nspec:\n  containers:\n  - name: main\n    image: postgres\n" {
		t.Errorf("pods.yaml after removing web:\n%s", got)
	}
	out, err = e.flash.Remove(t.Context(), "Pod", "default", "solo", nil, api.WriteInfo{})
	if p, ok := out.(*corev1.Pod); err != nil || !ok || *p.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("Remove solo: %v, %#v; want it terminating with its own grace", err, out)
	}
	out, err = e.flash.Remove(t.Context(), "Pod", "default", "solo", &zero, api.WriteInfo{})
	if p, ok := out.(*corev1.Pod); err != nil || !ok || *p.DeletionGracePeriodSeconds != 0 {
		t.Errorf("a second Remove of solo with grace 0: %v, %#v; want it terminating with grace 0", err, out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "solo.yaml")); !os.IsNotExist(err) {
		t.Errorf("solo.yaml after its only pod's removal: %v, want it gone", err)
	}
}

// TestFlashDeleteNamespace is `kubectl delete ns custom`: every document of
// an object in it goes (in every file), the namespace is Terminating until
// its pods are gone, then the watch delivers DELETED.
func TestFlashDeleteNamespace(t *testing.T) {
	e := newFlashEnv(t, map[string]string{
		"ns.yaml":   "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: custom\n",
		"apps.yaml": flashPod("web", "nginx") + "---\n" + strings.Replace(flashPod("app", "busybox"), "name: app", "name: app\n  namespace: custom", 1) + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: custom}\ndata: {k: v}\n",
	})
	events, err := e.st.Watch(t.Context(), store.KindNamespace, "", e.st.ResourceVersion())
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.flash.Remove(t.Context(), "Namespace", "", "custom", nil, api.WriteInfo{User: "admin", FieldManager: "kubectl-client-side-apply"})
	if err != nil {
		t.Fatal(err)
	}
	ns, ok := out.(*corev1.Namespace)
	if !ok || ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("Remove returned %#v, want the namespace Terminating", out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "ns.yaml")); !os.IsNotExist(err) {
		t.Errorf("ns.yaml: %v, want it removed", err)
	}
	if got := e.file("apps.yaml"); got != flashPod("web", "nginx") {
		t.Errorf("apps.yaml = %q, want only web's document", got)
	}
	if _, ok := e.st.Get(store.KindConfigMap, "custom", "cfg"); ok {
		t.Errorf("the namespace's ConfigMap is still in the store")
	}
	if o, ok := e.st.Get(store.KindPod, "custom", "app"); !ok || o.(*corev1.Pod).DeletionTimestamp == nil {
		t.Errorf("the namespace's pod should be terminating: %v", o)
	}
	if _, err := e.flash.Save(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "custom"}}, api.WriteInfo{}); !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), "unable to create new content in namespace custom because it is being terminated") {
		t.Errorf("create in a terminating namespace: %v, want Forbidden", err)
	}
	e.mgr.gone(t, "custom", "app")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == watch.Deleted && ev.Object.(*corev1.Namespace).Name == "custom" {
				return
			}
		case <-deadline:
			t.Fatal("no DELETED for the namespace after its last pod went")
		}
	}
}
