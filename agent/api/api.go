package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/store"
)

// LogStreamer copies a container's log to w. It is implemented by the
// agent's wiring; it returns an *apierrors.StatusError
// (k8s.io/apimachinery/pkg/api/errors) for NotFound or BadRequest so that
// the API relays them to the client.
type LogStreamer interface {
	Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions, w io.Writer) error
}

// Options configure the API.
type Options struct {
	// NodeName names the board's node.
	NodeName string
	// GitVersion is the Kubernetes version the API reports on /version
	// ("v1.37.2").
	GitVersion string
	// Power serves POST /podboot/v1/poweroff and /podboot/v1/reboot; nil
	// answers 501 with PowerDisabled as the reason.
	Power         Power
	PowerDisabled string
	// Metrics serves /metrics, /metrics/cadvisor and metrics.k8s.io (for
	// kubectl top); nil serves none of them.
	Metrics Metrics
	// Flash persists writes (create, update, patch, delete) as manifests on
	// the flash; nil answers every write 405.
	Flash Flash
	// Streams runs exec, attach and port-forward; nil answers them 405.
	Streams Streams
	// OTA serves /podboot/v1/ota (GET: its status), .../ota/bundles
	// (POST: a bundle) and .../ota/rollback (POST); nil answers them 501.
	OTA OTA
	// Log receives what cannot be told to a client (a log stream that
	// failed midway, a recovered panic); nil discards it.
	Log *slog.Logger
}

type server struct {
	store     *store.Store
	logs      LogStreamer
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	resources []*resource
	byName    map[string]*resource // by group + "/" + name
	// writes and fields serve the write path (write.go); fields is nil
	// when the field manager failed to start, and writes then answer 500.
	writes *writePath
	fields *fieldManager
}

// New returns the API's HTTP handler over st; logs serves pod logs.
func New(st *store.Store, logs LogStreamer, opts Options) http.Handler {
	return newServer(st, logs, opts)
}

func newServer(st *store.Store, logs LogStreamer, opts Options) *server {
	s := &server{store: st, logs: logs, opts: opts, log: opts.Log, now: time.Now, resources: resources()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.writes = newWritePath()
	var err error
	if s.fields, err = newFieldManager(); err != nil {
		s.log.Error("api: start the field manager; writes will fail", "err", err)
	}
	s.byName = map[string]*resource{}
	for _, r := range s.resources {
		s.byName[r.group+"/"+r.name] = r
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// The router is fuzzed never to panic; this only keeps a future
		// bug from killing the connection without an answer.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("api: recovered panic", "method", r.Method, "url", r.URL.String(), "panic", v)
			writeStatus(w, fmt.Errorf("internal error serving %s", r.URL.Path))
		}
	}()
	s.route(w, r)
}

// route dispatches a request by its path, as the API server lays it out.
func (s *server) route(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path {
	case "/healthz", "/readyz", "/livez":
		s.serveHealth(w, r)
		return
	case "/version":
		s.serveVersion(w, r)
		return
	case "/api":
		s.serveAPIVersions(w, r)
		return
	case "/apis":
		s.serveAPIGroups(w, r)
		return
	case "/api/v1":
		s.serveResourceList(w, r, "")
		return
	case "/apis/" + coordinationGroup:
		writeJSON(w, coordinationAPIGroup())
		return
	case "/apis/" + coordinationGroup + "/v1":
		s.serveResourceList(w, r, coordinationGroup)
		return
	case "/pods":
		s.serveKubeletPods(w, r)
		return
	case PowerOffPath, RebootPath:
		s.servePower(w, r, path)
		return
	case OTAPath, OTABundlesPath, OTARollbackPath:
		s.serveOTA(w, r, path)
		return
	}
	if s.routeMetrics(w, r, path) {
		return
	}
	if s.routeOpenAPI(w, r, path) {
		return
	}
	group, rest, ok := "", "", false
	if rest, ok = strings.CutPrefix(path, "/api/v1/"); !ok {
		group = coordinationGroup
		rest, ok = strings.CutPrefix(path, "/apis/"+coordinationGroup+"/v1/")
	}
	if !ok {
		writeStatus(w, pathNotFound())
		return
	}
	req, err := s.parseResourcePath(group, rest)
	if err != nil {
		writeStatus(w, err)
		return
	}
	if req.sub != "" {
		s.serveSubresource(w, r, req)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.serveWrite(w, r, req)
		return
	}
	if req.log {
		s.serveLog(w, r, req)
		return
	}
	s.serveResource(w, r, req)
}

// resourceRequest is a parsed /api/v1/... or /apis/<group>/v1/... path.
type resourceRequest struct {
	res       *resource
	namespace string // "" = all namespaces (or cluster-scoped)
	name      string // "" = the collection
	watch     bool   // legacy /api/v1/watch/... path
	log       bool   // pods/{name}/log
	// sub is a streaming subresource of a pod: "exec", "attach" or
	// "portforward" ("" = none).
	sub string
}

func (q resourceRequest) describe() string {
	if q.log {
		return "pods/log"
	}
	if q.sub != "" {
		return "pods/" + q.sub
	}
	return q.res.name
}

// parseResourcePath parses the path under a group's version; only that
// group's resources are found there.
func (s *server) parseResourcePath(group, rest string) (resourceRequest, error) {
	var q resourceRequest
	parts := strings.Split(rest, "/")
	if parts[0] == "watch" {
		q.watch = true
		parts = parts[1:]
	}
	for _, p := range parts {
		if p == "" {
			return q, pathNotFound()
		}
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		q.namespace = parts[1]
		parts = parts[2:]
		res := s.byName[group+"/"+parts[0]]
		if res == nil || !res.namespaced {
			return q, pathNotFound()
		}
		q.res = res
		switch {
		case len(parts) == 2:
			q.name = parts[1]
		case len(parts) == 3 && res.kind == store.KindPod && parts[2] == "log" && !q.watch:
			q.name, q.log = parts[1], true
		case len(parts) == 3 && res.kind == store.KindPod && streamingSubresources[parts[2]] && !q.watch:
			q.name, q.sub = parts[1], parts[2]
		case len(parts) != 1:
			return q, pathNotFound()
		}
		return q, nil
	}
	res := s.byName[group+"/"+parts[0]]
	if res == nil {
		return q, pathNotFound()
	}
	q.res = res
	switch len(parts) {
	case 1:
	case 2:
		if res.namespaced {
			return q, pathNotFound()
		}
		q.name = parts[1]
	default:
		return q, pathNotFound()
	}
	return q, nil
}

func (s *server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, "ok")
}
