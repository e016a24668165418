package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/podboot/podboot/agent/store"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

func get(t *testing.T, srv *httptest.Server, method, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

func TestDiscoveryAndHealth(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, p := range []string{"/healthz", "/readyz", "/livez"} {
		resp, body := get(t, srv, "GET", p, "")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Errorf("GET %s = %d %q, want 200 ok", p, resp.StatusCode, body)
		}
	}
	_, body := get(t, srv, "GET", "/version", "")
	v := decode[version.Info](t, body)
	if v.GitVersion != "v1.37.2" || v.Major != "1" || v.Minor != "37" || v.Platform == "" {
		t.Errorf("/version = %+v", v)
	}
	_, body = get(t, srv, "GET", "/api", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")
	if diff := cmp.Diff([]string{"v1"}, decode[metav1.APIVersions](t, body).Versions); diff != "" {
		t.Errorf("/api versions (-want +got):\n%s", diff)
	}
	_, body = get(t, srv, "GET", "/apis", "")
	if g := decode[metav1.APIGroupList](t, body); g.Kind != "APIGroupList" || len(g.Groups) != 1 || g.Groups[0].Name != "coordination.k8s.io" {
		t.Errorf("/apis = %+v, want an APIGroupList of coordination.k8s.io alone (no metrics served)", g)
	}
	_, body = get(t, srv, "GET", "/api/v1", "")
	type summary struct {
		Name       string
		Namespaced bool
		Verbs      []string
		Short      []string
		Categories []string
	}
	var got []summary
	for _, r := range decode[metav1.APIResourceList](t, body).APIResources {
		got = append(got, summary{r.Name, r.Namespaced, r.Verbs, r.ShortNames, r.Categories})
	}
	read := []string{"get", "list", "watch"}
	want := []summary{
		{"pods", true, read, []string{"po"}, []string{"all"}},
		{"pods/log", true, []string{"get"}, nil, nil},
		{"namespaces", false, read, []string{"ns"}, nil},
		{"nodes", false, read, []string{"no"}, nil},
		{"events", true, read, []string{"ev"}, nil},
		{"configmaps", true, read, []string{"cm"}, nil},
		{"secrets", true, read, nil, nil},
		{"resourcequotas", true, read, []string{"quota"}, nil},
		{"limitranges", true, read, []string{"limits"}, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/api/v1 resources (-want +got):\n%s", diff)
	}
}

func TestKubeletPods(t *testing.T) {
	srv, _ := newTestServer(t)
	_, body := get(t, srv, "GET", "/pods", "")
	list := decode[corev1.PodList](t, body)
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	want := []string{"default/crash", "default/done", "default/initwait", "default/term", "default/web", "other/pending", "other/pullerr"}
	if list.Kind != "PodList" || list.APIVersion != "v1" {
		t.Errorf("/pods typeMeta = %+v", list.TypeMeta)
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("/pods (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	srv, st := newTestServer(t)
	for i := range 1100 { // push the first changes out of the watch history
		if err := st.Put(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cm"}, Data: map[string]string{"i": string(rune('a' + i%26))}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		method, path, accept string
		code                 int32
		reason               metav1.StatusReason
		message              string // substring
	}{
		{"GET", "/nope", "", 404, metav1.StatusReasonNotFound, "the server could not find the requested resource"},
		{"GET", "/api/v1/services", "", 404, metav1.StatusReasonNotFound, "could not find"},
		{"GET", "/api/v1/namespaces/default/pods/web/binding", "", 404, metav1.StatusReasonNotFound, "could not find"},
		// This server has no Streams (stream_test.go tests the served ones).
		{"GET", "/api/v1/namespaces/default/pods/web/exec", "", 405, metav1.StatusReasonMethodNotAllowed, `get is not supported on resources of kind "pods/exec"`},
		{"GET", "/api/v1/namespaces/default/nodes", "", 404, metav1.StatusReasonNotFound, "could not find"},
		{"GET", "/api/v1/pods/web", "", 404, metav1.StatusReasonNotFound, "could not find"},
		{"GET", "/api/v1/namespaces/default/pods/nope", "", 404, metav1.StatusReasonNotFound, `pods "nope" not found`},
		{"GET", "/api/v1/nodes/nope", tableAccept, 404, metav1.StatusReasonNotFound, `nodes "nope" not found`},
		{"POST", "/api/v1/namespaces/default/pods", "", 405, metav1.StatusReasonMethodNotAllowed, "POST on pods is not supported: this agent serves reads only (it has no flash to write to)"},
		{"DELETE", "/api/v1/namespaces/default/pods/web", "", 405, metav1.StatusReasonMethodNotAllowed, "DELETE on pods"},
		{"PATCH", "/api/v1/nodes/board-1", "", 405, metav1.StatusReasonMethodNotAllowed, `patch is not supported on resources of kind "nodes"`},
		{"GET", "/api/v1/pods?labelSelector=" + url.QueryEscape("a in (b"), "", 400, metav1.StatusReasonBadRequest, `invalid labelSelector "a in (b"`},
		{"GET", "/api/v1/pods?fieldSelector=" + url.QueryEscape("x"), "", 400, metav1.StatusReasonBadRequest, `invalid fieldSelector "x"`},
		{"GET", "/api/v1/pods?fieldSelector=" + url.QueryEscape("spec.foo=1"), "", 400, metav1.StatusReasonBadRequest, "field label not supported: spec.foo"},
		{"GET", "/api/v1/nodes?fieldSelector=" + url.QueryEscape("status.phase=Running"), "", 400, metav1.StatusReasonBadRequest, "field label not supported: status.phase"},
		{"GET", "/api/v1/pods?watch=maybe", "", 400, metav1.StatusReasonBadRequest, `invalid watch "maybe"`},
		{"GET", "/api/v1/pods?includeObject=All", tableAccept, 400, metav1.StatusReasonBadRequest, `invalid includeObject "All"`},
		{"GET", "/api/v1/pods?watch=1&resourceVersion=3", "", 410, metav1.StatusReasonExpired, "too old resource version: 3"},
		{"GET", "/api/v1/pods?watch=1&resourceVersion=x", "", 400, metav1.StatusReasonBadRequest, `invalid resource version "x"`},
		{"GET", "/api/v1/pods?watch=1&timeoutSeconds=-1", "", 400, metav1.StatusReasonBadRequest, "invalid timeoutSeconds"},
		{"GET", "/api/v1/pods", "application/vnd.kubernetes.protobuf", 406, metav1.StatusReasonNotAcceptable, "only the following media types"},
		{"GET", "/api/v1/namespaces/default/pods/nope/log", "", 404, metav1.StatusReasonNotFound, `pods "nope" not found`},
		{"GET", "/api/v1/namespaces/default/pods/web/log", "", 400, metav1.StatusReasonBadRequest, "a container name must be specified for pod web, choose one of: [nginx sidecar]"},
		{"GET", "/api/v1/namespaces/default/pods/initwait/log?container=x", "", 400, metav1.StatusReasonBadRequest, "container x is not valid for pod initwait"},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?tailLines=ten", "", 400, metav1.StatusReasonBadRequest, `invalid tailLines "ten"`},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?follow=sure", "", 400, metav1.StatusReasonBadRequest, `invalid follow "sure"`},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?sinceTime=yesterday", "", 400, metav1.StatusReasonBadRequest, `invalid sinceTime "yesterday"`},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?tailLines=-1", "", 422, metav1.StatusReasonInvalid, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?limitBytes=0", "", 422, metav1.StatusReasonInvalid, "limitBytes: Invalid value: 0: must be greater than 0"},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?sinceSeconds=5&sinceTime=2025-01-01T00:00:00Z", "", 422, metav1.StatusReasonInvalid, "at most one of `sinceTime` or `sinceSeconds`"},
		{"GET", "/api/v1/namespaces/default/pods/crash/log?stream=Stdout&tailLines=1", "", 422, metav1.StatusReasonInvalid, "mutually exclusive"},
		{"GET", "/api/v1/namespaces/other/pods/pending/log", "", 400, metav1.StatusReasonBadRequest, "is waiting to start"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := get(t, srv, tt.method, tt.path, tt.accept)
			st := decode[metav1.Status](t, body)
			if int32(resp.StatusCode) != tt.code || st.Code != tt.code || st.Reason != tt.reason || !strings.Contains(st.Message, tt.message) {
				t.Errorf("got HTTP %d %+v; want %d %s with %q", resp.StatusCode, st, tt.code, tt.reason, tt.message)
			}
			if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure {
				t.Errorf("not a v1 Status: %s", body)
			}
		})
	}
}

func TestTable(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		query      string
		wantObject string // kind of the rows' objects, "" = none
	}{
		{"", "PartialObjectMetadata"},
		{"?includeObject=Metadata", "PartialObjectMetadata"},
		{"?includeObject=Object", "Pod"},
		{"?includeObject=None", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := get(t, srv, "GET", "/api/v1/namespaces/other/pods"+tt.query, tableAccept)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json;as=Table;v=v1;g=meta.k8s.io" {
				t.Errorf("Content-Type = %q", ct)
			}
			tab := decode[metav1.Table](t, body)
			if tab.Kind != "Table" || tab.APIVersion != "meta.k8s.io/v1" || tab.ResourceVersion == "" || len(tab.ColumnDefinitions) != 9 {
				t.Fatalf("table header: %+v, %d columns", tab.TypeMeta, len(tab.ColumnDefinitions))
			}
			var cells [][]any
			for _, r := range tab.Rows {
				cells = append(cells, r.Cells)
				var obj struct {
					Kind     string
					Metadata metav1.ObjectMeta
				}
				if tt.wantObject == "" {
					if r.Object.Raw != nil {
						t.Errorf("row carries %s, want no object", r.Object.Raw)
					}
					continue
				}
				if err := json.Unmarshal(r.Object.Raw, &obj); err != nil || obj.Kind != tt.wantObject || obj.Metadata.Labels["app"] == "" {
					t.Errorf("row object %s: kind %q labels %v (%v), want %s with labels", r.Object.Raw, obj.Kind, obj.Metadata.Labels, err, tt.wantObject)
				}
			}
			want := [][]any{
				{"pending", "0/1", "ContainerCreating", "0", "30s", "<none>", "<none>", "<none>", "<none>"},
				{"pullerr", "0/1", "ErrImagePull", "0", "90s", "<none>", "board-1", "<none>", "<none>"},
			}
			if diff := cmp.Diff(want, cells); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

// watchStream opens a watch and decodes its events.
func watchStream(t *testing.T, srv *httptest.Server, path, accept string) (<-chan map[string]json.RawMessage, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch %s: %d %s", path, resp.StatusCode, body)
	}
	ch := make(chan map[string]json.RawMessage, 10)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev map[string]json.RawMessage
			if err := dec.Decode(&ev); err != nil {
				return
			}
			ch <- ev
		}
	}()
	return ch, cancel
}

func next(t *testing.T, ch <-chan map[string]json.RawMessage) (string, json.RawMessage) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch ended")
		}
		var typ string
		_ = json.Unmarshal(ev["type"], &typ)
		return typ, ev["object"]
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return "", nil
}

func TestWatchTable(t *testing.T) {
	srv, st := newTestServer(t)
	rv := st.ResourceVersion()
	ch, cancel := watchStream(t, srv, "/api/v1/namespaces/other/pods?watch=true&resourceVersion="+rv, tableAccept)
	defer cancel()
	for _, phase := range []corev1.PodPhase{corev1.PodFailed, corev1.PodSucceeded} {
		obj, _ := st.Get(store.KindPod, "other", "pending")
		p := obj.(*corev1.Pod)
		p.Status.Phase, p.Status.ContainerStatuses = phase, nil
		if err := st.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []struct {
		status  string
		columns int
	}{{"Failed", 9}, {"Succeeded", 0}} {
		typ, raw := next(t, ch)
		tab := decode[metav1.Table](t, raw)
		if typ != "MODIFIED" || len(tab.Rows) != 1 || tab.Rows[0].Cells[2] != want.status || len(tab.ColumnDefinitions) != want.columns {
			t.Errorf("event %d: %s with %d columns, rows %+v; want MODIFIED %s with %d columns", i, typ, len(tab.ColumnDefinitions), tab.Rows, want.status, want.columns)
		}
		if len(tab.Rows) == 1 && len(tab.Rows[0].Conditions) != 1 {
			t.Errorf("event %d: a finished pod's row has conditions %v, want Completed", i, tab.Rows[0].Conditions)
		}
	}
}

func TestWatchSelectors(t *testing.T) {
	srv, st := newTestServer(t)
	ch, cancel := watchStream(t, srv, "/api/v1/pods?watch=1&labelSelector=tier%3Dfront", "application/json")
	defer cancel()
	seen := func() (string, string) {
		typ, raw := next(t, ch)
		p := decode[corev1.Pod](t, raw)
		return typ, p.Name + " " + p.Labels["tier"]
	}
	// Initial state from resourceVersion "": the matching pods.
	for _, want := range []string{"term front", "web front"} {
		if typ, got := seen(); typ != "ADDED" || got != want {
			t.Errorf("initial event %s %q, want ADDED %q", typ, got, want)
		}
	}
	relabel := func(ns, name, tier string) {
		obj, _ := st.Get(store.KindPod, ns, name)
		p := obj.(*corev1.Pod)
		p.Labels["tier"] = tier
		if err := st.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	relabel("default", "web", "back")    // leaves the selection
	relabel("other", "pullerr", "front") // joins it
	relabel("default", "crash", "side")  // never seen
	if err := st.Delete(store.KindPod, "default", "term"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ typ, pod string }{
		{"DELETED", "web back"}, {"ADDED", "pullerr front"}, {"DELETED", "term front"},
	} {
		if typ, got := seen(); typ != want.typ || got != want.pod {
			t.Errorf("event %s %q, want %s %q", typ, got, want.typ, want.pod)
		}
	}
}

// FuzzRouter sends arbitrary requests to the handler: it must answer each
// without panicking (the recovering wrapper is bypassed on purpose).
func FuzzRouter(f *testing.F) {
	for _, seed := range []struct{ method, target, accept string }{
		{"GET", "/api/v1/pods?watch=1", tableAccept},
		{"GET", "/api/v1/namespaces/default/pods/web/log?container=nginx&tailLines=2", ""},
		{"GET", "/api/v1/namespaces//pods", ""},
		{"GET", "/api/v1/watch/namespaces/default/pods/web?resourceVersion=0", ""},
		{"GET", "/api/v1/nodes?fieldSelector=metadata.name%3D%3D&labelSelector=!a", tableAccept},
		{"PUT", "/api/v1/namespaces/default", "application/json;as=Table;v=v9"},
		{"GET", "/api/v1/events?includeObject=Object&fieldSelector=involvedObject.uid!%3Dx", tableAccept},
		{"GET", "/%2e%2e/api/v1/..//pods", "*/*"},
		{"GET", "/apis/coordination.k8s.io/v1/watch/namespaces/kube-node-lease/leases/board-1", tableAccept},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/board-1/log", ""},
	} {
		f.Add(seed.method, seed.target, seed.accept)
	}
	st := store.New(func() time.Time { return t0 })
	s := newServer(st, fakeLogs{}, Options{GitVersion: "v1.37.2"})
	populateOnce := false
	f.Fuzz(func(t *testing.T, method, target, accept string) {
		if !populateOnce {
			populate(t, st)
			populateOnce = true
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // watches and follows end at once
		req := httptest.NewRequestWithContext(ctx, method, "http://x/", nil)
		req.URL = u
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		s.route(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Errorf("%s %s: HTTP %d", method, target, rec.Code)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
