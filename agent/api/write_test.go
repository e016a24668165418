package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/store"
)

// newWriteServer serves a store with writes through a fake flash: the
// namespaces default, kube-system, other and a terminating "ending", and
// in default a pod web (app=web), a pod done (Succeeded), a configmap
// cfg and a secret creds, all saved through the flash.
func newWriteServer(t *testing.T) (*httptest.Server, *store.Store, *fakeFlash) {
	t.Helper()
	s, st, flash := newWriteAPI(t)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, st, flash
}

// newWriteAPI is newWriteServer's API without the HTTP server.
func newWriteAPI(t testing.TB) (*server, *store.Store, *fakeFlash) {
	t.Helper()
	st := store.New(func() time.Time { return t0 })
	flash := newFakeFlash(st)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	save := func(obj runtime.Object) {
		t.Helper()
		if _, err := flash.Save(context.Background(), obj, WriteInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"default", "kube-system", "kube-public", "other"} {
		save(&corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	must(st.Put(&corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "ending", DeletionTimestamp: ptr(ago(0))},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	}))
	must(st.Put(fixtureNode()))
	save(testPod("web", "app", "web"))
	otherWeb := testPod("other-web", "app", "web")
	otherWeb.Namespace = "other"
	save(otherWeb)
	done := testPod("done", "app", "batch")
	save(done)
	obj, _ := st.Get(store.KindPod, "default", "done")
	donePod := obj.(*corev1.Pod)
	donePod.Status.Phase = corev1.PodSucceeded
	must(st.Put(donePod))
	save(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg"}, Data: map[string]string{"k": "v"}})
	save(&corev1.Secret{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "creds"}, StringData: map[string]string{"password": "s3cret"}})
	flash.saves = nil

	s := newServer(st, fakeLogs{}, Options{NodeName: "board-1", GitVersion: "v1.37.2", Flash: flash})
	s.now = func() time.Time { return t0 }
	return s, st, flash
}

func testPod(name string, labels ...string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox:1.36", Command: []string{"sleep", "3600"}}}},
	}
	for i := 0; i+1 < len(labels); i += 2 {
		p.Labels[labels[i]] = labels[i+1]
	}
	return p
}

type writeCase struct {
	name        string
	method      string
	path        string // with the query
	contentType string
	body        string
	wantCode    int
	// wantMessage is the Status message expected (exactly) for an error,
	// or a prefix when it ends in "...".
	wantMessage string
	wantReason  metav1.StatusReason
	wantWarning string
	// check inspects the store after the write.
	check func(t *testing.T, st *store.Store, body []byte)
}

func do(t *testing.T, srv *httptest.Server, method, path, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func runWriteCases(t *testing.T, tests []writeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, st, _ := newWriteServer(t)
			ct := tt.contentType
			if ct == "" && tt.body != "" {
				ct = "application/json"
			}
			resp, body := do(t, srv, tt.method, tt.path, ct, tt.body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d; body:\n%s", tt.method, tt.path, resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantMessage != "" || tt.wantReason != "" {
				var status metav1.Status
				if err := json.Unmarshal(body, &status); err != nil || status.Kind != "Status" {
					t.Fatalf("answer is not a Status (%v): %s", err, body)
				}
				if prefix, ok := strings.CutSuffix(tt.wantMessage, "..."); ok {
					if !strings.HasPrefix(status.Message, prefix) {
						t.Errorf("message = %q, want prefix %q", status.Message, prefix)
					}
				} else if tt.wantMessage != "" && status.Message != tt.wantMessage {
					t.Errorf("message = %q, want %q", status.Message, tt.wantMessage)
				}
				if tt.wantReason != "" && status.Reason != tt.wantReason {
					t.Errorf("reason = %q, want %q", status.Reason, tt.wantReason)
				}
				if int(status.Code) != tt.wantCode && status.Status == metav1.StatusFailure {
					t.Errorf("status code = %d, want %d", status.Code, tt.wantCode)
				}
			}
			if got := resp.Header.Get("Warning"); got != tt.wantWarning {
				t.Errorf("Warning header = %q, want %q", got, tt.wantWarning)
			}
			if tt.check != nil {
				tt.check(t, st, body)
			}
		})
	}
}

func getPod(t *testing.T, st *store.Store, ns, name string) *corev1.Pod {
	t.Helper()
	obj, ok := st.Get(store.KindPod, ns, name)
	if !ok {
		t.Fatalf("pod %s/%s is not in the store", ns, name)
	}
	return obj.(*corev1.Pod)
}

func absent(kind, ns, name string) func(t *testing.T, st *store.Store, _ []byte) {
	return func(t *testing.T, st *store.Store, _ []byte) {
		t.Helper()
		if _, ok := st.Get(kind, ns, name); ok {
			t.Errorf("%s %s/%s is still in the store", kind, ns, name)
		}
	}
}

const newPodJSON = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"new","labels":{"a":"b"}},"spec":{"containers":[{"name":"app","image":"busybox"}]}}`

func TestCreate(t *testing.T) {
	runWriteCases(t, []writeCase{
		{name: "pod", method: "POST", path: "/api/v1/namespaces/default/pods", body: newPodJSON, wantCode: 201,
			check: func(t *testing.T, st *store.Store, body []byte) {
				p := getPod(t, st, "default", "new")
				var got corev1.Pod
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if got.UID != p.UID || got.ResourceVersion != p.ResourceVersion || got.Kind != "Pod" {
					t.Errorf("answer uid %q rv %q kind %q, store uid %q rv %q", got.UID, got.ResourceVersion, got.Kind, p.UID, p.ResourceVersion)
				}
				if p.Spec.NodeName != "board-1" || p.Labels["a"] != "b" {
					t.Errorf("stored pod nodeName %q labels %v", p.Spec.NodeName, p.Labels)
				}
			}},
		{name: "yaml", method: "POST", path: "/api/v1/namespaces/default/pods", contentType: "application/yaml",
			body: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: new\nspec:\n  containers:\n  - name: app\n    image: busybox\n", wantCode: 201,
			check: func(t *testing.T, st *store.Store, _ []byte) { getPod(t, st, "default", "new") }},
		{name: "status is the agent's", method: "POST", path: "/api/v1/namespaces/default/pods",
			body:     `{"metadata":{"name":"new"},"spec":{"containers":[{"name":"app","image":"busybox"}]},"status":{"phase":"Running","podIP":"1.2.3.4"}}`,
			wantCode: 201,
			check: func(t *testing.T, st *store.Store, _ []byte) {
				if p := getPod(t, st, "default", "new"); p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" {
					t.Errorf("status = %+v, want Pending without an IP", p.Status)
				}
			}},
		{name: "namespace in the body", method: "POST", path: "/api/v1/namespaces/other/pods",
			body:     `{"metadata":{"name":"new","namespace":"other"},"spec":{"containers":[{"name":"app","image":"busybox"}]}}`,
			wantCode: 201, check: func(t *testing.T, st *store.Store, _ []byte) { getPod(t, st, "other", "new") }},
		{name: "namespace mismatch", method: "POST", path: "/api/v1/namespaces/other/pods",
			body:     `{"metadata":{"name":"new","namespace":"default"},"spec":{"containers":[{"name":"app","image":"busybox"}]}}`,
			wantCode: 400, wantReason: metav1.StatusReasonBadRequest,
			wantMessage: "the namespace of the provided object does not match the namespace sent on the request"},
		{name: "missing namespace", method: "POST", path: "/api/v1/namespaces/nope/pods", body: newPodJSON,
			wantCode: 404, wantReason: metav1.StatusReasonNotFound, wantMessage: `namespaces "nope" not found`},
		{name: "terminating namespace", method: "POST", path: "/api/v1/namespaces/ending/configmaps",
			body: `{"metadata":{"name":"c"}}`, wantCode: 403, wantReason: metav1.StatusReasonForbidden,
			wantMessage: `configmaps "c" is forbidden: unable to create new content in namespace ending because it is being terminated`},
		{name: "already exists", method: "POST", path: "/api/v1/namespaces/default/pods",
			body:     `{"metadata":{"name":"web"},"spec":{"containers":[{"name":"app","image":"busybox"}]}}`,
			wantCode: 409, wantReason: metav1.StatusReasonAlreadyExists, wantMessage: `pods "web" already exists`},
		{name: "generateName", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			body: `{"metadata":{"generateName":"cfg-"}}`, wantCode: 201,
			check: func(t *testing.T, st *store.Store, body []byte) {
				var cm corev1.ConfigMap
				if err := json.Unmarshal(body, &cm); err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(cm.Name, "cfg-") || len(cm.Name) != len("cfg-")+5 {
					t.Fatalf("generated name %q", cm.Name)
				}
				if _, ok := st.Get(store.KindConfigMap, "default", cm.Name); !ok {
					t.Errorf("configmap %s not stored", cm.Name)
				}
			}},
		{name: "no name", method: "POST", path: "/api/v1/namespaces/default/configmaps", body: `{"data":{"a":"b"}}`,
			wantCode: 422, wantReason: metav1.StatusReasonInvalid,
			wantMessage: `ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required`},
		{name: "invalid", method: "POST", path: "/api/v1/namespaces/default/pods",
			body: `{"metadata":{"name":"bad"},"spec":{"containers":[{"name":"app"}]}}`, wantCode: 422, wantReason: metav1.StatusReasonInvalid,
			wantMessage: `Pod "bad" is invalid: spec.containers[0].image: Required value`},
		{name: "resourceVersion set", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			body: `{"metadata":{"name":"c","resourceVersion":"5"}}`, wantCode: 500,
			wantMessage: "resourceVersion should not be set on objects to be created"},
		{name: "strict unknown field", method: "POST", path: "/api/v1/namespaces/default/pods?fieldValidation=Strict",
			body:     `{"metadata":{"name":"new"},"spec":{"foo":1,"containers":[{"name":"app","image":"busybox"}]}}`,
			wantCode: 400, wantReason: metav1.StatusReasonBadRequest,
			wantMessage: `Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo"`,
			check:       absent(store.KindPod, "default", "new")},
		{name: "strict duplicate field", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
			body: `{"metadata":{"name":"c","name":"d"}}`, wantCode: 400,
			wantMessage: `ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name"`},
		{name: "warn unknown field", method: "POST", path: "/api/v1/namespaces/default/pods?fieldValidation=Warn",
			body:     `{"metadata":{"name":"new"},"spec":{"foo":1,"containers":[{"name":"app","image":"busybox"}]}}`,
			wantCode: 201, wantWarning: `299 - "unknown field \"spec.foo\""`,
			check: func(t *testing.T, st *store.Store, _ []byte) { getPod(t, st, "default", "new") }},
		{name: "default is warn", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			body: `{"metadata":{"name":"c"},"bogus":true}`, wantCode: 201, wantWarning: `299 - "unknown field \"bogus\""`},
		{name: "ignore", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Ignore",
			body: `{"metadata":{"name":"c"},"bogus":true}`, wantCode: 201},
		{name: "bad fieldValidation", method: "POST", path: "/api/v1/namespaces/default/configmaps?fieldValidation=Loud",
			body: `{"metadata":{"name":"c"}}`, wantCode: 422, wantReason: metav1.StatusReasonInvalid,
			wantMessage: `CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": supported values: "", "Ignore", "Strict", "Warn"`},
		{name: "bad json", method: "POST", path: "/api/v1/namespaces/default/pods", body: `{"metadata":`,
			wantCode: 400, wantReason: metav1.StatusReasonBadRequest, wantMessage: "..."},
		{name: "another kind", method: "POST", path: "/api/v1/namespaces/default/pods",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`, wantCode: 400,
			wantMessage: `ConfigMap in version "v1" cannot be handled as a Pod: converting (v1.ConfigMap) to (core.Pod): unknown conversion`},
		{name: "unsupported media type", method: "POST", path: "/api/v1/namespaces/default/pods", contentType: "text/plain", body: newPodJSON,
			wantCode: 415, wantReason: metav1.StatusReasonUnsupportedMediaType,
			wantMessage: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"},
		{name: "too large", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			body: `{"metadata":{"name":"c"},"data":{"a":"` + strings.Repeat("x", 3<<20) + `"}}`, wantCode: 413,
			wantReason: metav1.StatusReasonRequestEntityTooLarge, wantMessage: "Request entity too large: limit is 3145728"},
		{name: "dry run", method: "POST", path: "/api/v1/namespaces/default/pods?dryRun=All", body: newPodJSON, wantCode: 201,
			check: absent(store.KindPod, "default", "new")},
		{name: "bad dry run", method: "POST", path: "/api/v1/namespaces/default/pods?dryRun=Some", body: newPodJSON, wantCode: 422,
			wantMessage: `CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Some"]: supported values: "All"`},
		{name: "namespace", method: "POST", path: "/api/v1/namespaces", body: `{"metadata":{"name":"custom"}}`, wantCode: 201,
			check: func(t *testing.T, st *store.Store, _ []byte) {
				obj, ok := st.Get(store.KindNamespace, "", "custom")
				if !ok || obj.(*corev1.Namespace).Status.Phase != corev1.NamespaceActive {
					t.Errorf("namespace custom = %v, %v; want Active", obj, ok)
				}
			}},
		{name: "node is read-only", method: "POST", path: "/api/v1/nodes", body: `{"metadata":{"name":"n"}}`, wantCode: 405,
			wantReason: metav1.StatusReasonMethodNotAllowed, wantMessage: `post is not supported on resources of kind "nodes"`},
		{name: "event is read-only", method: "DELETE", path: "/api/v1/namespaces/default/events/x", wantCode: 405,
			wantMessage: `delete is not supported on resources of kind "events"`},
		{name: "POST across namespaces", method: "POST", path: "/api/v1/pods", body: newPodJSON, wantCode: 405,
			wantMessage: `post is not supported on resources of kind "pods"`},
		{name: "POST to an object", method: "POST", path: "/api/v1/namespaces/default/pods/web", body: newPodJSON, wantCode: 405,
			wantMessage: `post is not supported on resources of kind "pods"`},
	})
}

func TestReplace(t *testing.T) {
	current := func(t *testing.T, srv *httptest.Server, path string) map[string]any {
		_, b := do(t, srv, "GET", path, "", "")
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	put := func(t *testing.T, srv *httptest.Server, path string, obj map[string]any) (*http.Response, metav1.Status) {
		b, _ := json.Marshal(obj)
		resp, body := do(t, srv, "PUT", path, "application/json", string(b))
		var s metav1.Status
		_ = json.Unmarshal(body, &s)
		return resp, s
	}
	const web = "/api/v1/namespaces/default/pods/web"
	spec := func(m map[string]any) map[string]any { return m["spec"].(map[string]any) }
	container := func(m map[string]any) map[string]any {
		return spec(m)["containers"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name     string
		path     string
		from     string // the object edited, when not path
		edit     func(m map[string]any)
		wantCode int
		wantMsg  string // prefix
	}{
		{name: "image", path: web, edit: func(m map[string]any) { container(m)["image"] = "busybox:1.37" }, wantCode: 200},
		{name: "labels without resourceVersion", path: web, edit: func(m map[string]any) {
			delete(m["metadata"].(map[string]any), "resourceVersion")
			m["metadata"].(map[string]any)["labels"] = map[string]any{"x": "y"}
		}, wantCode: 200},
		{name: "stale resourceVersion", path: web, edit: func(m map[string]any) { m["metadata"].(map[string]any)["resourceVersion"] = "2" },
			wantCode: 409, wantMsg: `Operation cannot be fulfilled on pods "web": the object has been modified; please apply your changes to the latest version and try again`},
		{name: "command", path: web, edit: func(m map[string]any) { container(m)["command"] = []any{"true"} },
			wantCode: 422, wantMsg: "Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"},
		{name: "added container", path: web, edit: func(m map[string]any) {
			spec(m)["containers"] = append(spec(m)["containers"].([]any), map[string]any{"name": "b", "image": "busybox"})
		}, wantCode: 422, wantMsg: `Pod "web" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers`},
		{name: "without the kubelet's fields", path: web, edit: func(m map[string]any) {
			delete(spec(m), "nodeName")
			delete(spec(m), "tolerations")
			container(m)["image"] = "busybox:1.37"
		}, wantCode: 200},
		{name: "uid", path: web, edit: func(m map[string]any) { m["metadata"].(map[string]any)["uid"] = "other" },
			wantCode: 422, wantMsg: `Pod "web" is invalid: metadata.uid: Invalid value: "other": field is immutable`},
		{name: "name", path: web, edit: func(m map[string]any) { m["metadata"].(map[string]any)["name"] = "webby" },
			wantCode: 400, wantMsg: "the name of the object (webby) does not match the name on the URL (web)"},
		{name: "missing", path: "/api/v1/namespaces/default/pods/gone", from: web, edit: func(m map[string]any) {
			md := m["metadata"].(map[string]any)
			md["name"] = "gone"
			delete(md, "resourceVersion")
			delete(md, "uid")
		}, wantCode: 404, wantMsg: `pods "gone" not found`},
		{name: "configmap data", path: "/api/v1/namespaces/default/configmaps/cfg", edit: func(m map[string]any) {
			m["data"] = map[string]any{"k": "w"}
		}, wantCode: 200},
		{name: "namespace finalizers are the agent's", path: "/api/v1/namespaces/other", edit: func(m map[string]any) {
			m["spec"] = map[string]any{"finalizers": []any{"mine"}}
			m["status"] = map[string]any{"phase": "Terminating"}
		}, wantCode: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, st, _ := newWriteServer(t)
			from := tt.path
			if tt.from != "" {
				from = tt.from
			}
			m := current(t, srv, from)
			tt.edit(m)
			resp, status := put(t, srv, tt.path, m)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("PUT = %d, want %d: %+v", resp.StatusCode, tt.wantCode, status)
			}
			if tt.wantMsg != "" && !strings.HasPrefix(status.Message, tt.wantMsg) {
				t.Errorf("message = %q, want prefix %q", status.Message, tt.wantMsg)
			}
			if tt.name == "namespace finalizers are the agent's" {
				obj, _ := st.Get(store.KindNamespace, "", "other")
				ns := obj.(*corev1.Namespace)
				if !cmp.Equal(ns.Spec.Finalizers, []corev1.FinalizerName{corev1.FinalizerKubernetes}) || ns.Status.Phase != corev1.NamespaceActive {
					t.Errorf("namespace other = %+v %+v; want the kubernetes finalizer, Active", ns.Spec, ns.Status)
				}
			}
		})
	}
}

func TestPatch(t *testing.T) {
	labels := func(want map[string]string) func(t *testing.T, st *store.Store, _ []byte) {
		return func(t *testing.T, st *store.Store, _ []byte) {
			t.Helper()
			if diff := cmp.Diff(want, getPod(t, st, "default", "web").Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		}
	}
	const web = "/api/v1/namespaces/default/pods/web"
	runWriteCases(t, []writeCase{
		{name: "strategic label", method: "PATCH", path: web, contentType: "application/strategic-merge-patch+json",
			body: `{"metadata":{"labels":{"env":"debug"}}}`, wantCode: 200, check: labels(map[string]string{"app": "web", "env": "debug"})},
		{name: "merge remove label", method: "PATCH", path: web, contentType: "application/merge-patch+json",
			body: `{"metadata":{"labels":{"app":null}}}`, wantCode: 200, check: labels(nil)},
		{name: "json patch", method: "PATCH", path: web, contentType: "application/json-patch+json",
			body: `[{"op":"add","path":"/metadata/labels/x","value":"y"}]`, wantCode: 200, check: labels(map[string]string{"app": "web", "x": "y"})},
		{name: "json patch test fails", method: "PATCH", path: web, contentType: "application/json-patch+json",
			body: `[{"op":"test","path":"/metadata/labels/app","value":"nope"}]`, wantCode: 422, wantMessage: "..."},
		{name: "json patch copies bounded", method: "PATCH", path: web, contentType: "application/json-patch+json",
			// The API server's words: a failed JSON patch says no more.
			body: copyBomb(), wantCode: 422, wantReason: metav1.StatusReasonInvalid,
			wantMessage: "the server rejected our request due to an error in our request",
			check:       labels(map[string]string{"app": "web"})},
		{name: "image", method: "PATCH", path: web, contentType: "application/strategic-merge-patch+json",
			body: `{"spec":{"containers":[{"name":"app","image":"busybox:1.37"}]}}`, wantCode: 200,
			check: func(t *testing.T, st *store.Store, _ []byte) {
				if img := getPod(t, st, "default", "web").Spec.Containers[0].Image; img != "busybox:1.37" {
					t.Errorf("image = %q", img)
				}
			}},
		{name: "forbidden change", method: "PATCH", path: web, contentType: "application/strategic-merge-patch+json",
			body: `{"spec":{"restartPolicy":"Never"}}`, wantCode: 422, wantReason: metav1.StatusReasonInvalid,
			wantMessage: "Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than ..."},
		{name: "stale resourceVersion", method: "PATCH", path: web, contentType: "application/merge-patch+json",
			body: `{"metadata":{"resourceVersion":"3","labels":{"x":"y"}}}`, wantCode: 409, wantReason: metav1.StatusReasonConflict,
			wantMessage: `Operation cannot be fulfilled on pods "web": the object has been modified; please apply your changes to the latest version and try again`,
			check:       labels(map[string]string{"app": "web"})},
		{name: "missing", method: "PATCH", path: "/api/v1/namespaces/default/pods/gone", contentType: "application/merge-patch+json",
			body: `{}`, wantCode: 404, wantMessage: `pods "gone" not found`},
		{name: "unsupported type", method: "PATCH", path: web, contentType: "application/json", body: `{}`, wantCode: 415,
			wantMessage: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"},
		{name: "invalid json", method: "PATCH", path: web, contentType: "application/merge-patch+json", body: `{`, wantCode: 400,
			wantMessage: "invalid JSON patch"},
		{name: "strict unknown field", method: "PATCH", path: web + "?fieldValidation=Strict", contentType: "application/strategic-merge-patch+json",
			body: `{"spec":{"foo":1}}`, wantCode: 422, wantMessage: `...`},
		{name: "warn unknown field", method: "PATCH", path: web, contentType: "application/merge-patch+json",
			body: `{"metadata":{"labels":{"x":"y"}},"spec":{"foo":1}}`, wantCode: 200, wantWarning: `299 - "unknown field \"spec.foo\""`},
		{name: "moves namespace", method: "PATCH", path: web, contentType: "application/merge-patch+json",
			body: `{"metadata":{"namespace":"other"}}`, wantCode: 400,
			wantMessage: "the namespace of the provided object does not match the namespace sent on the request"},
		{name: "apply needs a field manager", method: "PATCH", path: web, contentType: "application/apply-patch+yaml",
			body: "metadata:\n  labels:\n    x: y\n", wantCode: 422,
			wantMessage: `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`},
		{name: "force only for apply", method: "PATCH", path: web + "?force=true", contentType: "application/merge-patch+json",
			body: `{}`, wantCode: 422,
			wantMessage: `PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch`},
		{name: "secret data", method: "PATCH", path: "/api/v1/namespaces/default/secrets/creds", contentType: "application/merge-patch+json",
			body: `{"stringData":{"user":"me"}}`, wantCode: 200,
			check: func(t *testing.T, st *store.Store, _ []byte) {
				obj, _ := st.Get(store.KindSecret, "default", "creds")
				if got := string(obj.(*corev1.Secret).Data["user"]); got != "me" {
					t.Errorf("secret data user = %q, want me", got)
				}
			}},
	})
}

func TestDelete(t *testing.T) {
	decodePod := func(t *testing.T, body []byte) *corev1.Pod {
		var p corev1.Pod
		if err := json.Unmarshal(body, &p); err != nil || p.Kind != "Pod" {
			t.Fatalf("answer is not a Pod (%v): %s", err, body)
		}
		return &p
	}
	runWriteCases(t, []writeCase{
		{name: "pod", method: "DELETE", path: "/api/v1/namespaces/default/pods/web", wantCode: 200,
			check: func(t *testing.T, st *store.Store, body []byte) {
				if p := decodePod(t, body); p.Name != "web" {
					t.Errorf("answered pod %q", p.Name)
				}
				absent(store.KindPod, "default", "web")(t, st, nil)
			}},
		{name: "options body", method: "DELETE", path: "/api/v1/namespaces/default/pods/web",
			body: `{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background","gracePeriodSeconds":0}`, wantCode: 200,
			check: absent(store.KindPod, "default", "web")},
		{name: "uid precondition", method: "DELETE", path: "/api/v1/namespaces/default/pods/web",
			body: `{"preconditions":{"uid":"nope"}}`, wantCode: 409, wantReason: metav1.StatusReasonConflict,
			wantMessage: `Operation cannot be fulfilled on Pod "web": the UID in the precondition (nope) does not match the UID in record (...`},
		{name: "resourceVersion precondition", method: "DELETE", path: "/api/v1/namespaces/default/configmaps/cfg",
			body: `{"preconditions":{"resourceVersion":"1"}}`, wantCode: 409,
			wantMessage: `Operation cannot be fulfilled on ConfigMap "cfg": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record (...`},
		{name: "configmap", method: "DELETE", path: "/api/v1/namespaces/default/configmaps/cfg", wantCode: 200,
			check: func(t *testing.T, st *store.Store, body []byte) {
				var s metav1.Status
				if err := json.Unmarshal(body, &s); err != nil {
					t.Fatal(err)
				}
				if s.Status != metav1.StatusSuccess || s.Details == nil || s.Details.Name != "cfg" || s.Details.Kind != "configmaps" || s.Details.UID == "" {
					t.Errorf("answer = %+v, want Success with details", s)
				}
				absent(store.KindConfigMap, "default", "cfg")(t, st, nil)
			}},
		{name: "missing", method: "DELETE", path: "/api/v1/namespaces/default/secrets/nope", wantCode: 404, wantMessage: `secrets "nope" not found`},
		{name: "default namespace", method: "DELETE", path: "/api/v1/namespaces/default", wantCode: 403, wantReason: metav1.StatusReasonForbidden,
			wantMessage: `namespaces "default" is forbidden: this namespace may not be deleted`},
		{name: "kube-system", method: "DELETE", path: "/api/v1/namespaces/kube-system", wantCode: 403,
			wantMessage: `namespaces "kube-system" is forbidden: this namespace may not be deleted`},
		{name: "namespace cascades", method: "DELETE", path: "/api/v1/namespaces/other", wantCode: 200,
			check: func(t *testing.T, st *store.Store, _ []byte) {
				absent(store.KindNamespace, "", "other")(t, st, nil)
				absent(store.KindPod, "other", "other-web")(t, st, nil)
			}},
		{name: "collection across namespaces", method: "DELETE", path: "/api/v1/configmaps", wantCode: 405,
			wantMessage: `delete is not supported on resources of kind "configmaps"`,
			check: func(t *testing.T, st *store.Store, _ []byte) {
				if _, ok := st.Get(store.KindConfigMap, "default", "cfg"); !ok {
					t.Error("configmap default/cfg was deleted")
				}
			}},
		{name: "namespace collection", method: "DELETE", path: "/api/v1/namespaces", wantCode: 405,
			wantMessage: `delete is not supported on resources of kind "namespaces"`},
		{name: "collection by label", method: "DELETE", path: "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", wantCode: 200,
			check: func(t *testing.T, st *store.Store, body []byte) {
				var list corev1.PodList
				if err := json.Unmarshal(body, &list); err != nil {
					t.Fatal(err)
				}
				if list.Kind != "PodList" || len(list.Items) != 1 || list.Items[0].Name != "web" {
					t.Errorf("answer = %s, want a PodList of web", body)
				}
				absent(store.KindPod, "default", "web")(t, st, nil)
				getPod(t, st, "default", "done")
				getPod(t, st, "other", "other-web")
			}},
		{name: "bad grace", method: "DELETE", path: "/api/v1/namespaces/default/pods/web?propagationPolicy=Sideways", wantCode: 422,
			wantMessage: `DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan", "nil"`},
		{name: "dry run", method: "DELETE", path: "/api/v1/namespaces/default/pods/web?dryRun=All", wantCode: 200,
			check: func(t *testing.T, st *store.Store, _ []byte) { getPod(t, st, "default", "web") }},
	})
}

// TestDeleteGrace checks the grace period a deletion asks the flash for,
// and that a terminating pod is the answer.
func TestDeleteGrace(t *testing.T) {
	tests := []struct {
		name, path string
		body       string
		want       []string // the flash's removes
	}{
		{name: "the pod's own", path: "/api/v1/namespaces/default/pods/web", want: []string{"Pod default/web nil"}},
		{name: "query", path: "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=5", want: []string{"Pod default/web 5"}},
		{name: "body", path: "/api/v1/namespaces/default/pods/web", body: `{"gracePeriodSeconds":0}`, want: []string{"Pod default/web 0"}},
		{name: "negative is one", path: "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=-3", want: []string{"Pod default/web 1"}},
		{name: "finished goes at once", path: "/api/v1/namespaces/default/pods/done", want: []string{"Pod default/done 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, flash := newWriteServer(t)
			flash.terminate = true
			resp, body := do(t, srv, "DELETE", tt.path, "application/json", tt.body)
			if resp.StatusCode != 200 {
				t.Fatalf("DELETE = %d: %s", resp.StatusCode, body)
			}
			if diff := cmp.Diff(tt.want, flash.removed()); diff != "" {
				t.Errorf("removes (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("terminating", func(t *testing.T) {
		srv, st, flash := newWriteServer(t)
		flash.terminate = true
		const web = "/api/v1/namespaces/default/pods/web"
		_, body := do(t, srv, "DELETE", web, "", "")
		var p corev1.Pod
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
			t.Fatalf("answer deletionTimestamp %v grace %v, want set, 30", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
		}
		getPod(t, st, "default", "web")
		// A longer or equal grace changes nothing; a shorter one goes to the flash.
		do(t, srv, "DELETE", web+"?gracePeriodSeconds=60", "", "")
		do(t, srv, "DELETE", web+"?gracePeriodSeconds=0", "", "")
		if diff := cmp.Diff([]string{"Pod default/web nil", "Pod default/web 0"}, flash.removed()); diff != "" {
			t.Errorf("removes (-want +got):\n%s", diff)
		}
	})
}

// TestWriteInfo checks what the flash is told about the writer.
func TestWriteInfo(t *testing.T) {
	s, _, flash := newWriteAPI(t)
	// As Secure leaves the authenticated user for the handlers.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.ServeHTTP(w, r.WithContext(WithUser(r.Context(), User{Name: "alice", Groups: []string{"system:masters"}})))
	}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create", bytes.NewReader([]byte(`{"metadata":{"name":"c"}}`)))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", resp, err)
	}
	req, _ = http.NewRequest("PATCH", srv.URL+"/api/v1/namespaces/default/configmaps/c?dryRun=All", bytes.NewReader([]byte(`{"data":{"a":"b"}}`)))
	req.Header.Set("Content-Type", "application/merge-patch+json")
	req.Header.Set("User-Agent", "kubectl/v1.32.0 (linux/amd64) kubernetes/abc")
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("patch: %v %v", resp, err)
	}
	want := []WriteInfo{{User: "alice", FieldManager: "kubectl-create"}, {User: "alice", FieldManager: "kubectl", DryRun: true}}
	if diff := cmp.Diff(want, flash.saved()); diff != "" {
		t.Errorf("saves (-want +got):\n%s", diff)
	}
}

func TestWritesWithoutFlash(t *testing.T) {
	srv, _ := newTestServer(t)
	resp, body := do(t, srv, "POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"metadata":{"name":"c"}}`)
	if resp.StatusCode != 405 || !strings.Contains(string(body), "POST on configmaps is not supported") {
		t.Errorf("POST without a flash = %d %s, want 405", resp.StatusCode, body)
	}
	_, body = do(t, srv, "GET", "/api/v1", "", "")
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, r := range list.APIResources {
		if r.Name == "pods" && !cmp.Equal(r.Verbs, metav1.Verbs{"get", "list", "watch"}) {
			t.Errorf("pods verbs without a flash = %v, want reads only", r.Verbs)
		}
	}
}

func TestDiscoveryWriteVerbs(t *testing.T) {
	srv, _, _ := newWriteServer(t)
	_, body := do(t, srv, "GET", "/api/v1", "", "")
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	all := []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	want := map[string][]string{
		"pods": all, "configmaps": all, "secrets": all,
		"namespaces": {"create", "delete", "get", "list", "patch", "update", "watch"},
		"nodes":      {"get", "list", "watch"}, "events": {"get", "list", "watch"}, "pods/log": {"get"},
	}
	got := map[string][]string{}
	for _, r := range list.APIResources {
		if _, ok := want[r.Name]; ok {
			got[r.Name] = r.Verbs
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verbs (-want +got):\n%s", diff)
	}
}

// copyBomb is a JSON patch whose copies add 3,200,000 bytes: 32 copies of
// a 100,000-byte annotation.
func copyBomb() string {
	ops := []string{`{"op":"add","path":"/metadata/annotations/a","value":"` + strings.Repeat("x", 100000) + `"}`}
	for i := range 32 {
		ops = append(ops, fmt.Sprintf(`{"op":"copy","from":"/metadata/annotations/a","path":"/metadata/annotations/c%d"}`, i))
	}
	return "[" + strings.Join(ops, ",") + "]"
}

// TestConcurrentWritersConflict: writers racing with the same
// resourceVersion never both win; every loser gets a 409 and the stored
// object is the winner's.
func TestConcurrentWritersConflict(t *testing.T) {
	srv, st, _ := newWriteServer(t)
	rv := getPod(t, st, "default", "web").ResourceVersion
	const writers = 8
	codes := make(chan int, writers)
	winners := make(chan string, writers)
	for i := range writers {
		go func() {
			value := fmt.Sprintf("w%d", i)
			req, _ := http.NewRequest("PATCH", srv.URL+"/api/v1/namespaces/default/pods/web",
				strings.NewReader(fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"labels":{"writer":%q}}}`, rv, value)))
			req.Header.Set("Content-Type", "application/merge-patch+json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				codes <- -1 // counted as a wrong answer below
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
			if resp.StatusCode == http.StatusOK {
				winners <- value
			}
		}()
	}
	got := map[int]int{}
	for range writers {
		got[<-codes]++
	}
	if diff := cmp.Diff(map[int]int{200: 1, 409: writers - 1}, got); diff != "" {
		t.Fatalf("answers by code (-want +got):\n%s", diff)
	}
	if w, l := <-winners, getPod(t, st, "default", "web").Labels["writer"]; w != l {
		t.Errorf("stored writer label %q, the winner was %q", l, w)
	}
}

// TestDiscoveryPodSubresources: pods/exec, attach and portforward are
// listed, as the API server lists them, when the agent runs them.
func TestDiscoveryPodSubresources(t *testing.T) {
	for _, tt := range []struct {
		name    string
		streams Streams
		want    []string
	}{
		{name: "without streams", want: []string{"pods/log get"}},
		{name: "with streams", streams: &fakeStreams{}, want: []string{
			"pods/attach PodAttachOptions create,get", "pods/exec PodExecOptions create,get",
			"pods/log get", "pods/portforward PodPortForwardOptions create,get",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := store.New(func() time.Time { return t0 })
			srv := httptest.NewServer(newServer(st, fakeLogs{}, Options{NodeName: "board-1", Streams: tt.streams}))
			t.Cleanup(srv.Close)
			_, body := do(t, srv, "GET", "/api/v1", "", "")
			var list metav1.APIResourceList
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range list.APIResources {
				if !strings.HasPrefix(r.Name, "pods/") {
					continue
				}
				if r.Kind == "Pod" {
					got = append(got, r.Name+" "+strings.Join(r.Verbs, ","))
				} else {
					got = append(got, r.Name+" "+r.Kind+" "+strings.Join(r.Verbs, ","))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pod subresources (-want +got):\n%s", diff)
			}
		})
	}
}
