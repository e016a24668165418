package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/podboot/podboot/agent/store"
)

// watchEvent is metav1.WatchEvent with the object encoded in place.
type watchEvent struct {
	Type   watch.EventType `json:"type"`
	Object any             `json:"object"`
}

// serveWatch streams watch events as the API server does: one JSON
// WatchEvent after another, flushed as they happen, objects as the Accept
// header asked (a Table's column definitions only in the first event).
// Selectors are applied as the watch cache applies them: an object that
// stops matching is reported DELETED, one that starts matching ADDED.
func (s *server) serveWatch(w http.ResponseWriter, r *http.Request, req resourceRequest, q listQuery, neg negotiated) {
	ctx := r.Context()
	if d := timeoutOf(q); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if req.name != "" {
		// A watch on a named object's path (/pods/x?watch=1) watches x.
		q.fields = andName(q.fields, req.name)
	}
	// Objects the client already has as matching: those the list it
	// resumes from would have shown.
	sent := map[string]bool{}
	if q.resourceVersion != "" && q.resourceVersion != "0" {
		objs, _ := s.store.List(req.res.kind, req.namespace)
		for _, o := range objs {
			if q.matches(req.res, o) {
				sent[objectKey(o)] = true
			}
		}
	}
	ch, err := s.store.Watch(ctx, req.res.kind, req.namespace, q.resourceVersion)
	if err != nil {
		var expired *store.ExpiredError
		var badRV *store.BadResourceVersionError
		switch {
		case errors.As(err, &expired):
			err = apierrors.NewResourceExpired(expired.Error())
		case errors.As(err, &badRV):
			err = badRequest("%s", badRV.Error())
		}
		writeStatus(w, err)
		return
	}

	contentType := "application/json"
	if neg.output == outputTable {
		contentType = tableContentType(neg.tableVersion)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()

	enc := json.NewEncoder(w)
	first := true
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-ch:
			if !ok {
				return // dropped as too slow: the client watches again
			}
		}
		typ, send := filterEvent(req, q, sent, ev)
		if !send {
			continue
		}
		var obj any = ev.Object
		if neg.output == outputTable {
			obj = s.table(req.res, []runtime.Object{ev.Object}, q.includeObject, neg.tableVersion, metaOf(ev.Object).GetResourceVersion(), first)
		}
		first = false
		if err := enc.Encode(watchEvent{Type: typ, Object: obj}); err != nil {
			return // the client went away
		}
		flush()
	}
}

// filterEvent decides whether and as what a change reaches a watcher with
// selectors, and keeps sent up to date.
func filterEvent(req resourceRequest, q listQuery, sent map[string]bool, ev watch.Event) (watch.EventType, bool) {
	key := objectKey(ev.Object)
	matches := q.matches(req.res, ev.Object)
	had := sent[key]
	switch {
	case ev.Type == watch.Deleted:
		delete(sent, key)
		return watch.Deleted, matches || had
	case matches:
		sent[key] = true
		if !had {
			return watch.Added, true
		}
		return ev.Type, true
	case had:
		delete(sent, key)
		return watch.Deleted, true
	}
	return "", false
}

func objectKey(obj runtime.Object) string {
	m := metaOf(obj)
	return m.GetNamespace() + "/" + m.GetName()
}
