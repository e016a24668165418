package podagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/reconcile"
	"github.com/podboot/podboot/agent/runtime/fake"
	"github.com/podboot/podboot/agent/store"
)

// generation writes an OTA generation's pods directory and reads it as the
// controller does.
func (e *flashEnv) generation(gen uint64, files map[string]string) *manifest.Set {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), "ota", "gen", fmt.Sprintf("%020d", gen), "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	set, err := manifest.ReadDir(dir, manifest.Options{NodeName: "board-1"})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(set.Errors) > 0 {
		e.t.Fatalf("generation %d: %v", gen, set.Errors)
	}
	return set
}

// podView is a pod in the store as these tests see it.
type podView struct {
	Image       string
	UID         string
	Generation  string // the ota-generation annotation
	Terminating bool
}

// pods are the store's pods by name.
func (e *flashEnv) pods() map[string]podView {
	objs, _ := e.st.List(store.KindPod, "")
	out := map[string]podView{}
	for _, o := range objs {
		p := o.(*corev1.Pod)
		out[p.Namespace+"/"+p.Name] = podView{Image: p.Spec.Containers[0].Image, UID: string(p.UID),
			Generation: p.Annotations[annotationOTAGeneration], Terminating: p.DeletionTimestamp != nil}
	}
	return out
}

func (e *flashEnv) has(kind, namespace, name string) bool {
	_, ok := e.st.Get(kind, namespace, name)
	return ok
}

func uidOf(t *testing.T, doc string) string {
	t.Helper()
	set := manifest.Decode("x.yaml", []byte(doc), manifest.Options{NodeName: "board-1"})
	if len(set.Pods) != 1 {
		t.Fatalf("%q decodes to %d pods: %v", doc, len(set.Pods), set.Errors)
	}
	return string(set.Pods[0].UID)
}

const cfgYAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  k: v\n"

// TestFleetSetReplacesTheGenerationAsAWhole: the fleet's pods run beside
// the board's own, annotated with their generation; switching generations
// replaces the fleet's pods and configmaps as a whole while a pod the two
// generations share keeps its UID (it is not restarted), and the board's
// own pods are untouched throughout.
func TestFleetSetReplacesTheGenerationAsAWhole(t *testing.T) {
	e := newFlashEnv(t, map[string]string{"mine.yaml": flashPod("mine", "busybox")})
	mine := e.pod("mine").DeepCopy()
	web, api1, worker := flashPod("web", "nginx:1"), flashPod("api", "api:1"), flashPod("worker", "worker:1")

	e.flash.apply.setFleet(e.generation(5, map[string]string{"web.yaml": web, "api.yaml": api1, "cfg.yaml": cfgYAML}), 5)
	got5 := e.pods()
	cfg5 := e.has(store.KindConfigMap, "default", "cfg")

	e.flash.apply.setFleet(e.generation(6, map[string]string{"all.yaml": web + "---\n" + worker}), 6)
	got6 := e.pods()
	cfg6 := e.has(store.KindConfigMap, "default", "cfg")
	e.mgr.gone(t, "default", "api")

	e.flash.apply.setFleet(nil, 0)
	gotNone := e.pods()

	mineView := podView{Image: "busybox", UID: string(mine.UID)}
	want := []map[string]podView{{
		"default/mine": mineView,
		"default/web":  {Image: "nginx:1", UID: uidOf(t, web), Generation: "5"},
		"default/api":  {Image: "api:1", UID: uidOf(t, api1), Generation: "5"},
	}, {
		"default/mine":   mineView,
		"default/web":    {Image: "nginx:1", UID: uidOf(t, web), Generation: "6"}, // same UID: runs on
		"default/api":    {Image: "api:1", UID: uidOf(t, api1), Generation: "5", Terminating: true},
		"default/worker": {Image: "worker:1", UID: uidOf(t, worker), Generation: "6"},
	}, {
		"default/mine":   mineView,
		"default/web":    {Image: "nginx:1", UID: uidOf(t, web), Generation: "6", Terminating: true},
		"default/worker": {Image: "worker:1", UID: uidOf(t, worker), Generation: "6", Terminating: true},
	}}
	if diff := cmp.Diff(want, []map[string]podView{got5, got6, gotNone}); diff != "" {
		t.Errorf("pods at generations 5, 6, none (-want +got):\n%s", diff)
	}
	if !cfg5 || cfg6 {
		t.Errorf("configmap cfg in the store at generation 5: %v (want true), at 6: %v (want false)", cfg5, cfg6)
	}
	// The board's own pod was never republished: same object, same
	// resourceVersion.
	if now := e.pod("mine"); now.ResourceVersion != mine.ResourceVersion || now.Annotations[annotationOTAGeneration] != "" {
		t.Errorf("own pod changed by the switches: rv %s (was %s), annotations %v", now.ResourceVersion, mine.ResourceVersion, now.Annotations)
	}
	if e.flash.apply.ownSet() == nil || len(e.flash.apply.ownSet().Pods) != 1 {
		t.Errorf("Own() = %v, want the board's own Set with pod mine", e.flash.apply.ownSet())
	}
	// The fleet's objects never reach the board's own directory.
	entries, _ := os.ReadDir(e.dir)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if diff := cmp.Diff([]string{"mine.yaml"}, names); diff != "" {
		t.Errorf("the flash's pods directory (-want +got):\n%s", diff)
	}
}

// TestFleetSetBeforeTheWatcher: a fleet set given before the watcher's
// first Set (the agent's start) is applied with it, in one SetDesired, so
// the fleet's pods the reconcile manager restored are never stopped.
func TestFleetSetBeforeTheWatcher(t *testing.T) {
	st := store.New(nil)
	mgr := newFakeManager(st)
	a := &manifestApplier{st: st, mgr: mgr, rec: store.NewRecorder(st, "board-1", nil), node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "board-1"}}, log: slog.New(slog.DiscardHandler)}
	fleet := manifest.Decode("web.yaml", []byte(flashPod("web", "nginx")), manifest.Options{NodeName: "board-1"})
	a.setFleet(fleet, 3)
	before := slices.Clone(mgr.calls)
	a.apply(manifest.Decode("mine.yaml", []byte(flashPod("mine", "busybox")), manifest.Options{NodeName: "board-1"}))
	if diff := cmp.Diff([]string{"desired 2"}, append(before, mgr.calls...)); diff != "" {
		t.Errorf("manager calls (-want +got):\n%s", diff)
	}
}

// TestFleetCollisionKeepsTheOwnObject: a file added by hand after the
// generation was committed that defines a fleet pod: the board's own pod
// runs, and a Warning event and a log line name both files.
func TestFleetCollisionKeepsTheOwnObject(t *testing.T) {
	e := newFlashEnv(t, nil)
	fleetWeb, db := flashPod("web", "nginx:fleet"), flashPod("db", "postgres")
	e.flash.apply.setFleet(e.generation(6, map[string]string{"pods.yaml": db + "---\n" + fleetWeb}), 6)

	ownWeb := flashPod("web", "nginx:own")
	path := filepath.Join(e.dir, "web.yaml")
	if err := os.WriteFile(path, []byte(ownWeb), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	e.mgr.gone(t, "default", "web") // the fleet's web stopped
	e.flash.apply.setFleet(e.flash.apply.fleet, 6)

	want := map[string]podView{
		"default/db":  {Image: "postgres", UID: uidOf(t, db), Generation: "6"},
		"default/web": {Image: "nginx:own", UID: uidOf(t, ownWeb)},
	}
	if diff := cmp.Diff(want, e.pods()); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	msg := "Pod default/web is defined by the board's own manifest pods/web.yaml, document 0, and by OTA generation 6's ota/gen/00000000000000000006/pods/pods.yaml, document 1: the board's own is kept (remove one of them)"
	var collisions []string
	for _, ev := range e.events() {
		if strings.HasPrefix(ev, "OTACollision ") {
			collisions = append(collisions, ev)
		}
	}
	// Once, though applied twice.
	if diff := cmp.Diff([]string{"OTACollision Pod web: " + msg}, collisions); diff != "" {
		t.Errorf("collision events (-want +got):\n%s", diff)
	}
	if logs := e.logs.String(); strings.Count(logs, "manifest collides with the OTA generation's") != 1 ||
		!strings.Contains(logs, "file=pods/web.yaml") || !strings.Contains(logs, "otaFile=ota/gen/00000000000000000006/pods/pods.yaml") {
		t.Errorf("want one log line naming both files; logs:\n%s", logs)
	}
}

// TestFleetWritesRefused: the API may not write the fleet's objects: a
// label, an update, a delete of a fleet pod, configmap, secret or
// namespace is a 403 naming the generation, even as a dry run, and
// nothing is written; the board's own objects stay writable.
func TestFleetWritesRefused(t *testing.T) {
	e := newFlashEnv(t, map[string]string{"mine.yaml": flashPod("mine", "busybox")})
	edgeAPI := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api\n  namespace: edge\nspec:\n  containers:\n  - name: main\n    image: api:1\n"
	e.flash.apply.setFleet(e.generation(6, map[string]string{
		"web.yaml": flashPod("web", "nginx"), "cfg.yaml": cfgYAML,
		"creds.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: x\n",
		"apps.yaml":  "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
		"edge.yaml":  edgeAPI,
	}), 6)
	admin := api.WriteInfo{User: "admin", FieldManager: "kubectl-label"}
	labelled := e.pod("web").DeepCopy()
	labelled.Labels = map[string]string{"env": "debug"}
	save := func(obj runtime.Object, dry bool) func() error {
		return func() error {
			w := admin
			w.DryRun = dry
			_, err := e.flash.Save(t.Context(), obj, w)
			return err
		}
	}
	remove := func(kind, ns, name string) func() error {
		return func() error { _, err := e.flash.Remove(t.Context(), kind, ns, name, nil, admin); return err }
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"k": "changed"}}
	tests := []struct {
		name  string
		write func() error
		want  string // "" = allowed
	}{
		{"label a fleet pod", save(labelled, false), `pods "web" is managed by OTA generation 6: change it with a new bundle`},
		{"dry run", save(labelled, true), `pods "web" is managed by OTA generation 6: change it with a new bundle`},
		{"delete a fleet pod", remove(store.KindPod, "default", "web"), `pods "web" is managed by OTA generation 6: change it with a new bundle`},
		{"update a fleet configmap", save(cm, false), `configmaps "cfg" is managed by OTA generation 6: change it with a new bundle`},
		{"delete a fleet secret", remove(store.KindSecret, "default", "creds"), `secrets "creds" is managed by OTA generation 6: change it with a new bundle`},
		{"label a fleet namespace", save(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps", Labels: map[string]string{"a": "b"}}}, false), `namespaces "apps" is managed by OTA generation 6: change it with a new bundle`},
		{"delete a namespace the fleet uses", remove(store.KindNamespace, "", "edge"), `namespaces "edge" is managed by OTA generation 6: change it with a new bundle`},
		{"create a pod in a fleet namespace", save(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "tool", Namespace: "edge"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}}, false), ""},
		{"label the board's own pod", func() error {
			p := e.pod("mine").DeepCopy()
			p.Labels = map[string]string{"env": "debug"}
			return save(p, false)()
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			status, ok := err.(apierrors.APIStatus)
			if !ok {
				t.Fatalf("err = %v (%T), want a StatusError", err, err)
			}
			got := status.Status()
			if got.Code != http.StatusForbidden || got.Reason != metav1.StatusReasonForbidden || got.Message != tt.want {
				t.Errorf("status %d %s %q, want 403 Forbidden %q", got.Code, got.Reason, got.Message, tt.want)
			}
		})
	}
	entries, _ := os.ReadDir(e.dir)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if diff := cmp.Diff([]string{"mine.yaml", "pod_edge_tool.yaml"}, names); diff != "" {
		t.Errorf("the flash's pods directory (-want +got):\n%s", diff)
	}
	if p := e.pod("web"); p.Labels["env"] != "" || p.DeletionTimestamp != nil {
		t.Errorf("the fleet pod changed: labels %v, deletionTimestamp %v", p.Labels, p.DeletionTimestamp)
	}
}

// TestFleetWritesThroughTheAPI: what kubectl sends for a fleet pod (label,
// annotate, apply, edit, delete) is a 403 with the message; a create of
// its name is the API's 409 AlreadyExists.
func TestFleetWritesThroughTheAPI(t *testing.T) {
	e := newFlashEnv(t, nil)
	e.flash.apply.setFleet(e.generation(6, map[string]string{"web.yaml": flashPod("web", "nginx")}), 6)
	srv := httptest.NewServer(api.New(e.st, nil, api.Options{NodeName: "board-1", GitVersion: KubernetesVersion, Flash: e.flash}))
	t.Cleanup(srv.Close)
	const pod = "/api/v1/namespaces/default/pods/web"
	get := func() string {
		resp, err := http.Get(srv.URL + pod)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	live := get()
	const refused = `pods \"web\" is managed by OTA generation 6: change it with a new bundle`
	tests := []struct {
		name, method, path, contentType, body string
		code                                  int
		message                               string
	}{
		{"label", http.MethodPatch, pod + "?fieldManager=kubectl-label", "application/merge-patch+json", `{"metadata":{"labels":{"env":"debug"}}}`, 403, refused},
		{"annotate", http.MethodPatch, pod + "?fieldManager=kubectl-annotate", "application/strategic-merge-patch+json", `{"metadata":{"annotations":{"a":"b"}}}`, 403, refused},
		{"apply", http.MethodPatch, pod + "?fieldManager=kubectl&force=true", "application/apply-patch+yaml",
			"apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    env: debug\nspec:\n  containers:\n  - name: main\n    image: nginx\n", 403, refused},
		{"edit", http.MethodPut, pod, "application/json", strings.Replace(live, `"labels":{`, `"labels":{"env":"debug",`, 1), 403, refused},
		{"delete", http.MethodDelete, pod, "", "", 403, refused},
		{"create", http.MethodPost, "/api/v1/namespaces/default/pods", "application/yaml", flashPod("web", "nginx"), 409, `pods \"web\" already exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(b), `"message":"`+tt.message+`"`) {
				t.Errorf("%s %s: %d %s; want %d with message %s", tt.method, tt.path, resp.StatusCode, b, tt.code, tt.message)
			}
		})
	}
	if now := get(); now != live {
		t.Errorf("the fleet pod changed:\n%s\nwas\n%s", now, live)
	}
}

// TestFleetSwitchWithTheReconcileManager: through the real reconcile
// manager on the fake runtime, a pod the next generation holds unchanged
// is republished with the new generation's annotation under the same UID,
// and its container is neither stopped nor started again.
func TestFleetSwitchWithTheReconcileManager(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	st := store.New(nil)
	rec := store.NewRecorder(st, "board-1", nil)
	rt := fake.New()
	rt.SetPullable("nginx")
	mgr, err := reconcile.NewManager(reconcile.Config{Runtime: rt, Pods: storePublisher{st: st, log: log}, Events: rec,
		LogRoot: t.TempDir(), NodeName: "board-1", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	node := &corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "board-1"}}
	a := &manifestApplier{st: st, mgr: mgr, rec: rec, node: node, log: log}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return mgr.Run(gctx) })
	t.Cleanup(func() {
		cancel()
		_ = g.Wait()
	})
	opts := manifest.Options{NodeName: "board-1"}
	web := flashPod("web", "nginx")
	a.setFleet(manifest.Decode("web.yaml", []byte(web), opts), 5)
	a.apply(manifest.Decode("none.yaml", nil, opts)) // the watcher's first Set: an empty directory

	waitPod := func(what string, ok func(*corev1.Pod) bool) *corev1.Pod {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if o, found := st.Get(store.KindPod, "default", "web"); found && ok(o.(*corev1.Pod)) {
				return o.(*corev1.Pod)
			}
			if time.Now().After(deadline) {
				o, _ := st.Get(store.KindPod, "default", "web")
				t.Fatalf("web never %s: %+v\ncalls %v", what, o, rt.Calls())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	before := waitPod("Running at generation 5", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && p.Annotations[annotationOTAGeneration] == "5"
	})
	calls := len(rt.Calls())

	a.setFleet(manifest.Decode("all.yaml", []byte(web), opts), 6)
	after := waitPod("annotated with generation 6", func(p *corev1.Pod) bool { return p.Annotations[annotationOTAGeneration] == "6" })
	if after.UID != before.UID || after.Status.Phase != corev1.PodRunning || after.DeletionTimestamp != nil {
		t.Errorf("after the switch: uid %s phase %s deletion %v; want uid %s, Running, not terminating", after.UID, after.Status.Phase, after.DeletionTimestamp, before.UID)
	}
	for _, c := range rt.Calls()[calls:] {
		if strings.Contains(c, "Stop") || strings.Contains(c, "Create") || strings.Contains(c, "Start") {
			t.Errorf("the generation switch restarted an unchanged pod's container: runtime call %q", c)
		}
	}
}
