package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/metrics"
)

// stubMetrics serves fixed usage: the node at 250m and 1Gi, pods web
// (default, app=web) and dns (kube-system).
type stubMetrics struct{ err error }

func (stubMetrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "container_cpu_usage_seconds_total{pod=\"web\"} 1\n")
	})
}

func (stubMetrics) CadvisorHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "cadvisor\n") })
}

func usageOf(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse(cpu), corev1.ResourceMemory: apiresource.MustParse(mem)}
}

func (s stubMetrics) NodeMetrics(ctx context.Context) (metrics.NodeMetrics, error) {
	if s.err != nil {
		return metrics.NodeMetrics{}, s.err
	}
	return metrics.NodeMetrics{
		TypeMeta:   metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: metrics.GroupVersion},
		ObjectMeta: metav1.ObjectMeta{Name: "board-1", Labels: map[string]string{"kubernetes.io/os": "linux"}},
		Timestamp:  metav1.NewTime(t0), Window: metav1.Duration{Duration: 15 * time.Second},
		Usage: usageOf("250m", "1Gi"),
	}, nil
}

func (s stubMetrics) PodMetrics(ctx context.Context, namespace string) ([]metrics.PodMetrics, error) {
	if s.err != nil {
		return nil, s.err
	}
	all := []metrics.PodMetrics{
		{
			TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metrics.GroupVersion},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Labels: map[string]string{"app": "web"}},
			Timestamp:  metav1.NewTime(t0), Window: metav1.Duration{Duration: 15 * time.Second},
			Containers: []metrics.ContainerMetrics{{Name: "app", Usage: usageOf("120m", "20Mi")}, {Name: "side", Usage: usageOf("5m", "3Mi")}},
		},
		{
			TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: metrics.GroupVersion},
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "dns"},
			Timestamp:  metav1.NewTime(t0), Window: metav1.Duration{Duration: 15 * time.Second},
			Containers: []metrics.ContainerMetrics{{Name: "dns", Usage: usageOf("1m", "8Mi")}},
		},
	}
	var out []metrics.PodMetrics
	for _, p := range all {
		if namespace == "" || p.Namespace == namespace {
			out = append(out, p)
		}
	}
	return out, nil
}

func newMetricsServer(t *testing.T, m Metrics) *httptest.Server {
	t.Helper()
	srv, st := newTestServer(t)
	srv.Close()
	s := newServer(st, fakeLogs{}, Options{NodeName: "board-1", GitVersion: "v1.37.2", Metrics: m})
	s.now = func() time.Time { return t0 }
	srv = httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func TestMetricsDiscovery(t *testing.T) {
	srv := newMetricsServer(t, stubMetrics{})
	_, body := get(t, srv, "GET", "/apis", "")
	// After the built-in groups (coordination.k8s.io), as the API server
	// lists aggregated ones.
	groups := decode[metav1.APIGroupList](t, body)
	if n := len(groups.Groups); n != 2 || groups.Groups[n-1].Name != "metrics.k8s.io" || groups.Groups[n-1].PreferredVersion.GroupVersion != "metrics.k8s.io/v1beta1" {
		t.Errorf("/apis = %+v, want coordination.k8s.io then metrics.k8s.io/v1beta1", groups)
	}
	_, body = get(t, srv, "GET", "/apis/metrics.k8s.io", "")
	if g := decode[metav1.APIGroup](t, body); g.Name != "metrics.k8s.io" || len(g.Versions) != 1 {
		t.Errorf("/apis/metrics.k8s.io = %+v", g)
	}
	_, body = get(t, srv, "GET", "/apis/metrics.k8s.io/v1beta1", "")
	list := decode[metav1.APIResourceList](t, body)
	type summary struct {
		Name, Kind string
		Namespaced bool
		Verbs      []string
	}
	var got []summary
	for _, r := range list.APIResources {
		got = append(got, summary{r.Name, r.Kind, r.Namespaced, r.Verbs})
	}
	want := []summary{{"nodes", "NodeMetrics", false, []string{"get", "list"}}, {"pods", "PodMetrics", true, []string{"get", "list"}}}
	if diff := cmp.Diff(want, got); diff != "" || list.GroupVersion != "metrics.k8s.io/v1beta1" {
		t.Errorf("resources of %s (-want +got):\n%s", list.GroupVersion, diff)
	}
}

func TestMetricsWithoutSource(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, p := range []string{"/metrics", "/metrics/cadvisor", "/apis/metrics.k8s.io/v1beta1", "/apis/metrics.k8s.io/v1beta1/nodes"} {
		if resp, _ := get(t, srv, "GET", p, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s without metrics = %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestMetricsEndpoints(t *testing.T) {
	srv := newMetricsServer(t, stubMetrics{})
	failing := newMetricsServer(t, stubMetrics{err: errors.New("containerd is down")})
	podNames := func(body []byte) []string {
		var names []string
		for _, p := range decode[metrics.PodMetricsList](t, body).Items {
			names = append(names, p.Namespace+"/"+p.Name)
		}
		return names
	}
	nodeNames := func(body []byte) []string {
		var names []string
		for _, n := range decode[metrics.NodeMetricsList](t, body).Items {
			names = append(names, n.Name)
		}
		return names
	}
	tests := []struct {
		name     string
		srv      *httptest.Server
		method   string
		path     string
		wantCode int
		check    func(body []byte) string // returns a complaint
	}{
		{"prometheus", srv, "GET", "/metrics", 200, func(b []byte) string {
			if !strings.Contains(string(b), "container_cpu_usage_seconds_total") {
				return "no container_cpu_usage_seconds_total"
			}
			return ""
		}},
		{"cadvisor", srv, "GET", "/metrics/cadvisor", 200, func(b []byte) string {
			if string(b) != "cadvisor\n" {
				return "not the cadvisor handler"
			}
			return ""
		}},
		{"all pods", srv, "GET", metricsPrefix + "/pods", 200, func(b []byte) string {
			return cmp.Diff([]string{"default/web", "kube-system/dns"}, podNames(b))
		}},
		{"namespace pods", srv, "GET", metricsPrefix + "/namespaces/kube-system/pods", 200, func(b []byte) string {
			return cmp.Diff([]string{"kube-system/dns"}, podNames(b))
		}},
		{"label selector", srv, "GET", metricsPrefix + "/pods?labelSelector=app%3Dweb", 200, func(b []byte) string {
			return cmp.Diff([]string{"default/web"}, podNames(b))
		}},
		{"field selector", srv, "GET", metricsPrefix + "/pods?fieldSelector=metadata.name%3Ddns", 200, func(b []byte) string {
			return cmp.Diff([]string{"kube-system/dns"}, podNames(b))
		}},
		{"one pod", srv, "GET", metricsPrefix + "/namespaces/default/pods/web", 200, func(b []byte) string {
			p := decode[metrics.PodMetrics](t, b)
			if p.Kind != "PodMetrics" || len(p.Containers) != 2 || p.Containers[0].Usage.Cpu().String() != "120m" || p.Window.Duration != 15*time.Second {
				return "pod metrics: " + string(b)
			}
			return ""
		}},
		{"pod without metrics", srv, "GET", metricsPrefix + "/namespaces/default/pods/nope", 404, func(b []byte) string {
			if s := decode[metav1.Status](t, b); s.Message != `pods.metrics.k8s.io "default/nope" not found` {
				return "message: " + s.Message
			}
			return ""
		}},
		{"nodes", srv, "GET", metricsPrefix + "/nodes", 200, func(b []byte) string { return cmp.Diff([]string{"board-1"}, nodeNames(b)) }},
		{"nodes by label", srv, "GET", metricsPrefix + "/nodes?labelSelector=kubernetes.io/os%3Dwindows", 200, func(b []byte) string { return cmp.Diff([]string(nil), nodeNames(b)) }},
		{"one node", srv, "GET", metricsPrefix + "/nodes/board-1", 200, func(b []byte) string {
			n := decode[metrics.NodeMetrics](t, b)
			if n.Kind != "NodeMetrics" || n.Usage.Memory().String() != "1Gi" {
				return "node metrics: " + string(b)
			}
			return ""
		}},
		{"other node", srv, "GET", metricsPrefix + "/nodes/other", 404, func(b []byte) string {
			if s := decode[metav1.Status](t, b); s.Message != `nodes.metrics.k8s.io "other" not found` {
				return "message: " + s.Message
			}
			return ""
		}},
		{"bad selector", srv, "GET", metricsPrefix + "/pods?labelSelector=a%3D%3D%3D", 400, nil},
		{"unknown field", srv, "GET", metricsPrefix + "/pods?fieldSelector=status.phase%3DRunning", 400, nil},
		{"unknown resource", srv, "GET", metricsPrefix + "/services", 404, nil},
		{"namespaced nodes", srv, "GET", metricsPrefix + "/namespaces/default/nodes", 404, nil},
		{"too deep", srv, "GET", metricsPrefix + "/namespaces/default/pods/web/x", 404, nil},
		{"write", srv, "DELETE", metricsPrefix + "/nodes/board-1", 405, nil},
		{"source failing", failing, "GET", metricsPrefix + "/nodes", 503, func(b []byte) string {
			if s := decode[metav1.Status](t, b); !strings.Contains(s.Message, "containerd is down") {
				return "message: " + s.Message
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, tt.srv, tt.method, tt.path, "")
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, resp.StatusCode, tt.wantCode, body)
			}
			if tt.check != nil {
				if msg := tt.check(body); msg != "" {
					t.Errorf("%s %s: %s", tt.method, tt.path, msg)
				}
			}
		})
	}
}

// TestKubectlTop runs the real kubectl top against the metrics group.
func TestKubectlTop(t *testing.T) {
	srv := newMetricsServer(t, stubMetrics{})
	k := newKubectl(t, srv.URL)
	tests := []struct {
		args []string
		want []string // lines (fields joined by one space)
	}{
		{[]string{"top", "pod"}, []string{"NAME CPU(cores) MEMORY(bytes)", "web 125m 23Mi"}},
		{[]string{"top", "pod", "-A"}, []string{"NAMESPACE NAME CPU(cores) MEMORY(bytes)", "default web 125m 23Mi", "kube-system dns 1m 8Mi"}},
		{[]string{"top", "pod", "web", "--containers"}, []string{"POD NAME CPU(cores) MEMORY(bytes)", "web app 120m 20Mi", "web side 5m 3Mi"}},
		{[]string{"top", "node"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := k.ok(tt.args...)
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				got = append(got, strings.Join(strings.Fields(l), " "))
			}
			if tt.want == nil {
				if len(got) != 2 || !strings.HasPrefix(got[1], "board-1 250m ") {
					t.Errorf("kubectl top node:\n%s", out)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("kubectl %v (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
