package api

import (
	"encoding/json"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/store"
)

// objectList is the JSON shape of every <Kind>List.
type objectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []runtime.Object `json:"items"`
}

// serveResource serves get, list and watch of one resource.
func (s *server) serveResource(w http.ResponseWriter, r *http.Request, req resourceRequest) {
	neg := negotiate(r.Header.Get("Accept"))
	if !neg.acceptable {
		writeStatus(w, notAcceptable())
		return
	}
	q, err := parseListQuery(req.res, r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	if req.watch || q.watch {
		s.serveWatch(w, r, req, q, neg)
		return
	}
	if req.name != "" {
		obj, ok := s.store.Get(req.res.kind, req.namespace, req.name)
		if !ok {
			writeStatus(w, notFound(req.res, req.name))
			return
		}
		if neg.output == outputTable {
			s.writeTable(w, s.table(req.res, []runtime.Object{obj}, q.includeObject, neg.tableVersion, "", true))
			return
		}
		writeJSON(w, obj)
		return
	}
	objs, rv := s.store.List(req.res.kind, req.namespace)
	matched := objs[:0]
	for _, o := range objs {
		if q.matches(req.res, o) {
			matched = append(matched, o)
		}
	}
	if neg.output == outputTable {
		s.writeTable(w, s.table(req.res, matched, q.includeObject, neg.tableVersion, rv, true))
		return
	}
	items := make([]runtime.Object, len(matched))
	copy(items, matched)
	writeJSON(w, &objectList{
		TypeMeta: metav1.TypeMeta{Kind: req.res.kind + "List", APIVersion: req.res.groupVersion()},
		ListMeta: metav1.ListMeta{ResourceVersion: rv},
		Items:    items,
	})
}

func tableContentType(version string) string {
	return "application/json;as=Table;v=" + version + ";g=meta.k8s.io"
}

func (s *server) writeTable(w http.ResponseWriter, t *metav1.Table) {
	w.Header().Set("Content-Type", tableContentType(t.APIVersion[len("meta.k8s.io/"):]))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(t) // the client went away
}

// table converts objects as the API server's TableConvertor does: every
// column (kubectl hides priority-1 columns unless -o wide), a row per
// object carrying the object's metadata (default), the whole object, or
// nothing, as includeObject asks.
func (s *server) table(res *resource, objs []runtime.Object, include metav1.IncludeObjectPolicy, version, rv string, withColumns bool) *metav1.Table {
	now := s.now()
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/" + version},
		ListMeta: metav1.ListMeta{ResourceVersion: rv},
		Rows:     make([]metav1.TableRow, 0, len(objs)),
	}
	if withColumns {
		t.ColumnDefinitions = res.columns
	}
	for _, obj := range objs {
		row := metav1.TableRow{Cells: res.row(obj, now)}
		if p, ok := obj.(*corev1.Pod); ok {
			row.Conditions = podRowConditions(p)
		}
		var embedded any
		switch include {
		case metav1.IncludeObject:
			embedded = obj
		case metav1.IncludeNone:
		default:
			partial := meta.AsPartialObjectMetadata(metaOf(obj))
			partial.TypeMeta = metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/" + version}
			embedded = partial
		}
		if embedded != nil {
			raw, err := json.Marshal(embedded)
			if err != nil {
				// Core types always marshal; keep the row without its object.
				s.log.Error("api: encode table row object", "kind", res.kind, "name", metaOf(obj).GetName(), "err", err)
			}
			row.Object = runtime.RawExtension{Raw: raw}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// serveKubeletPods answers kubelet's read-only GET /pods: a v1 PodList of
// every pod on the node.
func (s *server) serveKubeletPods(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, writesNotServed(r.Method, "pods"))
		return
	}
	objs, rv := s.store.List(store.KindPod, "")
	list := &corev1.PodList{
		TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: rv},
		Items:    make([]corev1.Pod, 0, len(objs)),
	}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			list.Items = append(list.Items, *p)
		}
	}
	writeJSON(w, list)
}

// timeoutOf returns the watch's duration limit (0 = none).
func timeoutOf(q listQuery) time.Duration {
	if q.timeoutSeconds <= 0 {
		return 0
	}
	return time.Duration(q.timeoutSeconds) * time.Second
}
