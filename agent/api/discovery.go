package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	goruntime "runtime"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/podboot/podboot/agent/store"
)

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(v) // the client went away
}

// serveAPIVersions answers /api. kubectl first asks for aggregated
// discovery (apidiscovery.k8s.io/v2); a plain APIVersions in
// application/json makes it fall back to /api/v1's resource list, which is
// all this small API needs.
func (s *server) serveAPIVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
		},
	})
}

// serveAPIGroups answers /apis: coordination.k8s.io (the node's Lease),
// and metrics.k8s.io when metrics are served (kubectl top looks for it
// there), in the API server's order (built-in groups, then aggregated
// ones).
func (s *server) serveAPIGroups(w http.ResponseWriter, r *http.Request) {
	groups := []metav1.APIGroup{coordinationAPIGroup()}
	if s.opts.Metrics != nil {
		groups = append(groups, metricsAPIGroup())
	}
	writeJSON(w, &metav1.APIGroupList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
		Groups:   groups,
	})
}

var coordinationGroupVersion = metav1.GroupVersionForDiscovery{GroupVersion: coordinationGroup + "/v1", Version: "v1"}

func coordinationAPIGroup() metav1.APIGroup {
	return metav1.APIGroup{
		TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:             coordinationGroup,
		Versions:         []metav1.GroupVersionForDiscovery{coordinationGroupVersion},
		PreferredVersion: coordinationGroupVersion,
	}
}

// serveResourceList answers /api/v1 (group "") and /apis/<group>/v1 with
// the group's resources and the verbs served on them: the read verbs
// everywhere, and the API server's write verbs on pods, namespaces,
// configmaps and secrets when the agent has a flash to write to (nodes,
// events and leases are the agent's own).
func (s *server) serveResourceList(w http.ResponseWriter, r *http.Request, group string) {
	list := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList"},
		GroupVersion: "v1",
	}
	if group != "" {
		// As the API server: a named group's list carries its apiVersion.
		list.APIVersion, list.GroupVersion = "v1", group+"/v1"
	}
	read := metav1.Verbs{"get", "list", "watch"}
	for _, res := range s.resources {
		if res.group != group {
			continue
		}
		verbs := read
		if s.opts.Flash != nil && writable(res.kind) {
			verbs = writeVerbs(res)
		}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.name, SingularName: res.singular, Namespaced: res.namespaced, Kind: res.kind,
			Verbs: verbs, ShortNames: res.shortNames, Categories: res.categories,
		})
		if res.name == "pods" {
			list.APIResources = append(list.APIResources, s.podSubresources()...)
		}
	}
	writeJSON(w, list)
}

// serveVersion answers /version with the Kubernetes version the agent
// stands for and how it was built.
func (s *server) serveVersion(w http.ResponseWriter, r *http.Request) {
	info := version.Info{
		GitVersion:   s.opts.GitVersion,
		GitTreeState: "clean",
		GoVersion:    goruntime.Version(),
		Compiler:     goruntime.Compiler,
		Platform:     fmt.Sprintf("%s/%s", goruntime.GOOS, goruntime.GOARCH),
	}
	// "v1.37.2" → major "1", minor "37".
	if v, ok := strings.CutPrefix(s.opts.GitVersion, "v"); ok {
		parts := strings.SplitN(v, ".", 3)
		if len(parts) >= 2 {
			info.Major = parts[0]
			info.Minor = strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
		}
	}
	writeJSON(w, info)
}

// writeVerbs are the verbs the API server lists for a writable resource,
// in its (sorted) order; namespaces have no deletecollection.
func writeVerbs(res *resource) metav1.Verbs {
	if res.kind == store.KindNamespace {
		return metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}
	}
	return metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

// podSubresources are the pod subresources served, in the API server's
// (sorted) order: the streaming ones when the agent runs them, and log.
func (s *server) podSubresources() []metav1.APIResource {
	sub := func(name, kind string, verbs ...string) metav1.APIResource {
		return metav1.APIResource{Name: "pods/" + name, Namespaced: true, Kind: kind, Verbs: verbs}
	}
	if s.opts.Streams == nil {
		return []metav1.APIResource{sub("log", "Pod", "get")}
	}
	return []metav1.APIResource{
		sub("attach", "PodAttachOptions", "create", "get"),
		sub("exec", "PodExecOptions", "create", "get"),
		sub("log", "Pod", "get"),
		sub("portforward", "PodPortForwardOptions", "create", "get"),
	}
}
