package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
)

var (
	fuzzMethods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	fuzzTargets = []string{
		"/api/v1/namespaces/default/pods", "/api/v1/namespaces/default/pods/web", "/api/v1/namespaces/default/pods/new",
		"/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/configmaps/cfg",
		"/api/v1/namespaces/default/secrets", "/api/v1/namespaces/default/secrets/creds",
		"/api/v1/namespaces", "/api/v1/namespaces/other", "/api/v1/namespaces/default",
		"/api/v1/namespaces/other/pods", "/api/v1/namespaces/ending/pods", "/api/v1/namespaces/nope/configmaps",
		"/api/v1/nodes/board-1", "/api/v1/namespaces/default/pods/done",
	}
	fuzzContentTypes = []string{
		"application/json", "application/yaml", "application/strategic-merge-patch+json", "application/merge-patch+json",
		"application/json-patch+json", "application/apply-patch+yaml", "application/vnd.kubernetes.protobuf", "", "text/plain",
	}
)

// FuzzWrite sends arbitrary writes to the write handlers over a fake
// flash: nothing panics, every answer is a Status or an object of the
// right kind, and the store stays consistent (every object valid as a
// manifest document, in a namespace that exists).
func FuzzWrite(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint8(0), "", []byte(newPodJSON))
	f.Add(uint8(2), uint8(1), uint8(2), "fieldValidation=Strict", []byte(`{"metadata":{"labels":{"a":"b"}}}`))
	f.Add(uint8(2), uint8(1), uint8(4), "", []byte(`[{"op":"remove","path":"/spec/containers/0"}]`))
	f.Add(uint8(2), uint8(4), uint8(5), "fieldManager=m&force=true", []byte("data:\n  k: w\n"))
	f.Add(uint8(3), uint8(8), uint8(0), "", []byte(`{"gracePeriodSeconds":-1,"preconditions":{"uid":""}}`))
	f.Add(uint8(3), uint8(0), uint8(7), "labelSelector=app%3Dweb&gracePeriodSeconds=0", []byte(nil))
	f.Add(uint8(1), uint8(4), uint8(1), "", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata: {a: b}\n"))
	f.Add(uint8(0), uint8(7), uint8(6), "", []byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x09Namespace"))
	f.Fuzz(func(t *testing.T, method, target, contentType uint8, query string, body []byte) {
		s, st, _ := newWriteAPI(t)
		path := fuzzTargets[int(target)%len(fuzzTargets)]
		if query != "" {
			path += "?" + query
		}
		r, err := http.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "http://board"+path, bytes.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		if ct := fuzzContentTypes[int(contentType)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		s.route(w, r) // not ServeHTTP: a panic must fail the fuzz, not be recovered
		checkAnswer(t, r, w, fuzzKind(fuzzTargets[int(target)%len(fuzzTargets)]))
		checkStore(t, st)
	})
}

// checkAnswer fails unless a write's answer is a Status carrying its code
// (any failure, and a Success) or an object of a kind the API serves.
func checkAnswer(t *testing.T, r *http.Request, w *httptest.ResponseRecorder, kind string) {
	t.Helper()
	var head struct {
		metav1.TypeMeta
		Code   int32           `json:"code"`
		Status json.RawMessage `json:"status"` // an object's status, or a Status' "Success"/"Failure"
	}
	if err := json.Unmarshal(w.Body.Bytes(), &head); err != nil {
		t.Fatalf("%s %s: answer %d is not JSON (%v): %q", r.Method, r.URL, w.Code, err, w.Body.String())
	}
	statusIs := func(want string) bool { return string(head.Status) == `"`+want+`"` }
	if w.Code >= 300 {
		if head.Kind != "Status" || int(head.Code) != w.Code || !statusIs(metav1.StatusFailure) {
			t.Fatalf("%s %s: answer %d is not a Failure Status with its code: %s", r.Method, r.URL, w.Code, w.Body.String())
		}
		return
	}
	switch head.Kind {
	case kind, kind + "List":
	case "Status":
		if !statusIs(metav1.StatusSuccess) {
			t.Fatalf("%s %s: answer %d is a %s Status: %s", r.Method, r.URL, w.Code, head.Status, w.Body.String())
		}
	default:
		t.Fatalf("%s %s: answer %d is a %q: %s", r.Method, r.URL, w.Code, head.Kind, w.Body.String())
	}
}

// fuzzKind is the kind a target path serves.
func fuzzKind(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/")
	res := parts[0]
	if res == "namespaces" && len(parts) > 2 {
		res = parts[2]
	}
	return map[string]string{
		"pods": store.KindPod, "configmaps": store.KindConfigMap, "secrets": store.KindSecret,
		"namespaces": store.KindNamespace, "nodes": store.KindNode,
	}[res]
}

// checkStore fails unless every written object still decodes as a
// manifest document and lives in a namespace the store holds.
func checkStore(t *testing.T, st *store.Store) {
	t.Helper()
	for _, kind := range []string{store.KindNamespace, store.KindPod, store.KindConfigMap, store.KindSecret} {
		objs, _ := st.List(kind, "")
		for _, o := range objs {
			m := metaOf(o)
			if ns := m.GetNamespace(); ns != "" {
				if _, ok := st.Get(store.KindNamespace, "", ns); !ok {
					t.Fatalf("%s %s/%s is in a namespace the store does not hold", kind, ns, m.GetName())
				}
			}
			if kind == store.KindNamespace && m.GetName() == "ending" {
				continue // put into the store directly, terminating
			}
			if _, err := manifest.Check(clearForCheck(o), manifest.Options{NodeName: "board-1"}); err != nil {
				t.Fatalf("%s %s/%s in the store is not a valid manifest document: %v", kind, m.GetNamespace(), m.GetName(), err)
			}
		}
	}
}

// clearForCheck drops what the store adds, as a Save does.
func clearForCheck(o runtime.Object) runtime.Object {
	o = o.DeepCopyObject()
	if p, ok := o.(*corev1.Pod); ok {
		p.Status = corev1.PodStatus{}
	}
	return o
}
