package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const leasesPath = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"

// TestLeaseDiscovery: coordination.k8s.io/v1 is a named group in /apis,
// before metrics.k8s.io as the API server orders its groups, with leases
// as its one resource; core v1 does not list it.
func TestLeaseDiscovery(t *testing.T) {
	srv := newMetricsServer(t, stubMetrics{})
	_, body := get(t, srv, "GET", "/apis", "")
	var groups []string
	for _, g := range decode[metav1.APIGroupList](t, body).Groups {
		groups = append(groups, g.Name+" "+g.PreferredVersion.GroupVersion)
	}
	if diff := cmp.Diff([]string{"coordination.k8s.io coordination.k8s.io/v1", "metrics.k8s.io metrics.k8s.io/v1beta1"}, groups); diff != "" {
		t.Errorf("/apis groups (-want +got):\n%s", diff)
	}
	_, body = get(t, srv, "GET", "/apis/coordination.k8s.io", "")
	if g := decode[metav1.APIGroup](t, body); g.Kind != "APIGroup" || g.Name != "coordination.k8s.io" || len(g.Versions) != 1 || g.Versions[0].GroupVersion != "coordination.k8s.io/v1" {
		t.Errorf("/apis/coordination.k8s.io = %+v", g)
	}
	_, body = get(t, srv, "GET", "/apis/coordination.k8s.io/v1", "")
	list := decode[metav1.APIResourceList](t, body)
	want := []metav1.APIResource{{Name: "leases", SingularName: "lease", Namespaced: true, Kind: "Lease", Verbs: metav1.Verbs{"get", "list", "watch"}}}
	if diff := cmp.Diff(want, list.APIResources); diff != "" || list.GroupVersion != "coordination.k8s.io/v1" || list.Kind != "APIResourceList" {
		t.Errorf("resources of %s %s (-want +got):\n%s", list.Kind, list.GroupVersion, diff)
	}
	_, body = get(t, srv, "GET", "/api/v1", "")
	for _, r := range decode[metav1.APIResourceList](t, body).APIResources {
		if r.Name == "leases" {
			t.Error("/api/v1 lists leases")
		}
	}
}

// TestLease: get, list, Table and watch of the node's lease in
// kube-node-lease, and the API server's errors for what is not there.
func TestLease(t *testing.T) {
	srv, st := newTestServer(t)

	_, body := get(t, srv, "GET", leasesPath+"/board-1", "")
	l := decode[coordinationv1.Lease](t, body)
	if l.Kind != "Lease" || l.APIVersion != "coordination.k8s.io/v1" || l.Namespace != "kube-node-lease" || l.Name != "board-1" ||
		l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "board-1" || l.Spec.RenewTime == nil {
		t.Errorf("GET lease = %s", body)
	}

	for _, path := range []string{leasesPath, "/apis/coordination.k8s.io/v1/leases"} {
		_, body = get(t, srv, "GET", path, "")
		list := decode[coordinationv1.LeaseList](t, body)
		if list.Kind != "LeaseList" || list.APIVersion != "coordination.k8s.io/v1" || list.ResourceVersion == "" || len(list.Items) != 1 || list.Items[0].Name != "board-1" {
			t.Errorf("GET %s = %s", path, body)
		}
	}

	resp, body := get(t, srv, "GET", leasesPath, tableAccept)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json;as=Table;v=v1;g=meta.k8s.io" {
		t.Errorf("Content-Type = %q", ct)
	}
	tab := decode[metav1.Table](t, body)
	var columns []string
	for _, c := range tab.ColumnDefinitions {
		columns = append(columns, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Holder", "Age"}, columns); diff != "" {
		t.Errorf("lease columns (-want +got):\n%s", diff)
	}
	if len(tab.Rows) != 1 {
		t.Fatalf("lease table rows: %+v", tab.Rows)
	}
	if diff := cmp.Diff([]any{"board-1", "board-1", "26h"}, tab.Rows[0].Cells); diff != "" {
		t.Errorf("lease row (-want +got):\n%s", diff)
	}

	// A renewal reaches a watcher as MODIFIED.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+leasesPath+"?watch=1&fieldSelector=metadata.name%3Dboard-1&resourceVersion="+l.ResourceVersion, nil)
	if err != nil {
		t.Fatal(err)
	}
	wresp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer wresp.Body.Close()
	waitWatchers(t, st, 1)
	renewed := fixtureLease(t0)
	if err := st.Put(renewed); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type   string
		Object coordinationv1.Lease
	}
	if err := json.NewDecoder(wresp.Body).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "MODIFIED" || ev.Object.Spec.RenewTime == nil || !ev.Object.Spec.RenewTime.Time.Equal(t0) || ev.Object.APIVersion != "coordination.k8s.io/v1" {
		t.Errorf("watch event %+v, want MODIFIED with renewTime %v", ev, t0)
	}

	errs := []struct {
		method, path string
		code         int32
		message      string
	}{
		{"GET", leasesPath + "/nope", 404, `leases.coordination.k8s.io "nope" not found`},
		{"GET", "/api/v1/namespaces/kube-node-lease/leases", 404, "could not find"},
		{"GET", "/api/v1/leases", 404, "could not find"},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/default/pods", 404, "could not find"},
		{"GET", "/apis/coordination.k8s.io/v1/leases/board-1", 404, "could not find"},
		{"GET", "/apis/coordination.k8s.io/v2/leases", 404, "could not find"},
		{"PUT", leasesPath + "/board-1", 405, `put is not supported on resources of kind "leases.coordination.k8s.io"`},
	}
	for _, tt := range errs {
		resp, body := get(t, srv, tt.method, tt.path, "")
		s := decode[metav1.Status](t, body)
		if int32(resp.StatusCode) != tt.code || s.Code != tt.code || !strings.Contains(s.Message, tt.message) {
			t.Errorf("%s %s = HTTP %d %+v; want %d with %q", tt.method, tt.path, resp.StatusCode, s, tt.code, tt.message)
		}
	}
}
