package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podboot/podboot/agent/metrics"
)

// Metrics is what /metrics, /metrics/cadvisor and the metrics.k8s.io group
// serve; *metrics.Metrics implements it.
type Metrics interface {
	// Handler serves /metrics, CadvisorHandler /metrics/cadvisor.
	Handler() http.Handler
	CadvisorHandler() http.Handler
	NodeMetrics(ctx context.Context) (metrics.NodeMetrics, error)
	// PodMetrics returns the pods of namespace ("" = all) with usage.
	PodMetrics(ctx context.Context, namespace string) ([]metrics.PodMetrics, error)
}

const (
	metricsGroup   = "metrics.k8s.io"
	metricsVersion = "v1beta1"
	metricsPrefix  = "/apis/" + metricsGroup + "/" + metricsVersion
)

var metricsGroupVersion = metav1.GroupVersionForDiscovery{GroupVersion: metrics.GroupVersion, Version: metricsVersion}

func metricsAPIGroup() metav1.APIGroup {
	return metav1.APIGroup{
		TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:             metricsGroup,
		Versions:         []metav1.GroupVersionForDiscovery{metricsGroupVersion},
		PreferredVersion: metricsGroupVersion,
	}
}

// routeMetrics serves the metrics paths; it reports false for any other.
func (s *server) routeMetrics(w http.ResponseWriter, r *http.Request, path string) bool {
	switch {
	case path == "/metrics", path == "/metrics/cadvisor",
		path == "/apis/"+metricsGroup, path == metricsPrefix, strings.HasPrefix(path, metricsPrefix+"/"):
	default:
		return false
	}
	if s.opts.Metrics == nil {
		writeStatus(w, pathNotFound())
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, writesNotServed(r.Method, strings.TrimPrefix(path, "/")))
		return true
	}
	switch path {
	case "/metrics":
		s.opts.Metrics.Handler().ServeHTTP(w, r)
	case "/metrics/cadvisor":
		s.opts.Metrics.CadvisorHandler().ServeHTTP(w, r)
	case "/apis/" + metricsGroup:
		writeJSON(w, metricsAPIGroup())
	case metricsPrefix:
		// As metrics-server's discovery: get and list of nodes and pods.
		verbs := metav1.Verbs{"get", "list"}
		writeJSON(w, &metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: metrics.GroupVersion,
			APIResources: []metav1.APIResource{
				{Name: "nodes", Namespaced: false, Kind: "NodeMetrics", Verbs: verbs},
				{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: verbs},
			},
		})
	default:
		s.serveResourceMetrics(w, r, strings.TrimPrefix(path, metricsPrefix+"/"))
	}
	return true
}

// serveResourceMetrics serves nodes[/NAME], pods and
// namespaces/NS/pods[/NAME] of metrics.k8s.io.
func (s *server) serveResourceMetrics(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		if p == "" {
			writeStatus(w, pathNotFound())
			return
		}
	}
	var namespace string
	if len(parts) >= 3 && parts[0] == "namespaces" {
		namespace, parts = parts[1], parts[2:]
		if parts[0] != "pods" {
			writeStatus(w, pathNotFound())
			return
		}
	}
	if len(parts) > 2 || (parts[0] != "pods" && parts[0] != "nodes") {
		writeStatus(w, pathNotFound())
		return
	}
	sel, err := parseMetricsSelectors(r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	var name string
	if len(parts) == 2 {
		name = parts[1]
	}
	if parts[0] == "nodes" {
		s.serveNodeMetrics(w, r, name, sel)
		return
	}
	s.servePodMetrics(w, r, namespace, name, sel)
}

type metricsSelectors struct {
	labels labels.Selector
	fields fields.Selector
}

func parseMetricsSelectors(v url.Values) (metricsSelectors, error) {
	sel := metricsSelectors{labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if s := v.Get("labelSelector"); s != "" {
		if sel.labels, err = labels.Parse(s); err != nil {
			return sel, badRequest("invalid labelSelector %q: %v", s, err)
		}
	}
	if s := v.Get("fieldSelector"); s != "" {
		if sel.fields, err = fields.ParseSelector(s); err != nil {
			return sel, badRequest("invalid fieldSelector %q: %v", s, err)
		}
		for _, req := range sel.fields.Requirements() {
			if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
				return sel, badRequest("field label not supported: %s", req.Field)
			}
		}
	}
	return sel, nil
}

func (sel metricsSelectors) matches(m metav1.ObjectMeta) bool {
	return sel.labels.Matches(labels.Set(m.Labels)) &&
		sel.fields.Matches(fields.Set{"metadata.name": m.Name, "metadata.namespace": m.Namespace})
}

func (s *server) serveNodeMetrics(w http.ResponseWriter, r *http.Request, name string, sel metricsSelectors) {
	gr := schema.GroupResource{Group: metricsGroup, Resource: "nodes"}
	if name != "" && name != s.opts.NodeName {
		writeStatus(w, apierrors.NewNotFound(gr, name))
		return
	}
	nm, err := s.opts.Metrics.NodeMetrics(r.Context())
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	if name != "" {
		writeJSON(w, nm)
		return
	}
	list := &metrics.NodeMetricsList{
		TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: metrics.GroupVersion},
		Items:    []metrics.NodeMetrics{},
	}
	if sel.matches(nm.ObjectMeta) {
		list.Items = append(list.Items, nm)
	}
	writeJSON(w, list)
}

func (s *server) servePodMetrics(w http.ResponseWriter, r *http.Request, namespace, name string, sel metricsSelectors) {
	pods, err := s.opts.Metrics.PodMetrics(r.Context(), namespace)
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
		return
	}
	if name != "" {
		for _, p := range pods {
			if p.Name == name {
				writeJSON(w, p)
				return
			}
		}
		// metrics-server's words: the pod has no metrics (yet).
		writeStatus(w, apierrors.NewNotFound(schema.GroupResource{Group: metricsGroup, Resource: "pods"}, namespace+"/"+name))
		return
	}
	list := &metrics.PodMetricsList{
		TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: metrics.GroupVersion},
		Items:    []metrics.PodMetrics{},
	}
	for _, p := range pods {
		if sel.matches(p.ObjectMeta) {
			list.Items = append(list.Items, p)
		}
	}
	writeJSON(w, list)
}
