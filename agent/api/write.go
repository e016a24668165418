package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podboot/podboot/agent/store"
)

// maxRequestBodyBytes is kube-apiserver's limit on a write's body
// (--max-resource-write-bytes' default, 3 MiB).
const maxRequestBodyBytes = 3 << 20

// requestTimeout bounds a write as the API server's requestTimeoutUpperBound.
const requestTimeout = 34 * time.Second

// writePath is the state the write handlers share (docs/api.md, "Writes").
type writePath struct {
	// mu serializes every write: Flash.Refresh, the read of the live
	// object, the preconditions, then Flash.Save or Flash.Remove. Two
	// writers therefore never both pass a check against the same
	// resourceVersion.
	mu     sync.Mutex
	codecs *codecs
}

func newWritePath() *writePath {
	// JSON patch's copy operation can grow a document exponentially; the
	// API server bounds what copies may add with json-patch's (global)
	// limit, to its --max-request-bytes (pkg/server/config.go), and so do
	// we, never loosening a smaller limit set elsewhere.
	for {
		old := atomic.LoadInt64(&jsonpatch.AccumulatedCopySizeLimit)
		if old > 0 && old <= maxRequestBodyBytes {
			break
		}
		if atomic.CompareAndSwapInt64(&jsonpatch.AccumulatedCopySizeLimit, old, maxRequestBodyBytes) {
			break
		}
	}
	return &writePath{codecs: newCodecs()}
}

// writable reports whether clients may write objects of kind; nodes,
// events and leases are the agent's own.
func writable(kind string) bool {
	switch kind {
	case store.KindPod, store.KindNamespace, store.KindConfigMap, store.KindSecret:
		return true
	}
	return false
}

// writeRequest is one write being served.
type writeRequest struct {
	req resourceRequest
	r   *http.Request
	// warnings go back as Warning headers, as the API server's
	// (fieldValidation=Warn).
	warnings []string
}

func (wr *writeRequest) warn(text string) {
	wr.warnings = append(wr.warnings, text)
}

// serveWrite serves POST, PUT, PATCH and DELETE of a resource.
func (s *server) serveWrite(w http.ResponseWriter, r *http.Request, req resourceRequest) {
	wr := &writeRequest{req: req, r: r}
	obj, code, err := s.write(wr)
	for _, text := range wr.warnings {
		if h, herr := utilnet.NewWarningHeader(299, "-", text); herr == nil {
			w.Header().Add("Warning", h)
		}
	}
	if err != nil {
		writeStatus(w, err)
		return
	}
	s.writeObject(w, r, req.res, code, obj)
}

// write dispatches a write by its method, as the API server routes them.
func (s *server) write(wr *writeRequest) (runtime.Object, int, error) {
	req, r := wr.req, wr.r
	gr := schema.GroupResource{Group: req.res.group, Resource: req.res.name}
	if !writable(req.res.kind) || req.watch {
		return nil, 0, apierrors.NewMethodNotSupported(gr, strings.ToLower(r.Method))
	}
	if s.opts.Flash == nil {
		return nil, 0, writesNotServed(r.Method, req.describe())
	}
	if !negotiate(r.Header.Get("Accept")).acceptable {
		return nil, 0, notAcceptable()
	}
	if s.writes == nil || s.fields == nil {
		return nil, 0, apierrors.NewInternalError(errors.New("the write path did not start (see the agent's log)"))
	}
	if req.res.namespaced && req.namespace == "" {
		// Across namespaces only list and watch are served.
		return nil, 0, apierrors.NewMethodNotSupported(gr, strings.ToLower(r.Method))
	}
	ctx := r.Context()
	if !(r.Method == http.MethodDelete && req.name == "") {
		// As the API server: a deletecollection, like a list, has no
		// upper bound.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	switch {
	case r.Method == http.MethodPost && req.name == "":
		return s.create(ctx, wr)
	case r.Method == http.MethodPut && req.name != "":
		return s.replace(ctx, wr)
	case r.Method == http.MethodPatch && req.name != "":
		return s.patch(ctx, wr)
	case r.Method == http.MethodDelete && req.name != "":
		return s.deleteOne(ctx, wr)
	case r.Method == http.MethodDelete && req.res.kind != store.KindNamespace:
		// As the API server: namespaces have no deletecollection.
		return s.deleteCollection(ctx, wr)
	}
	return nil, 0, apierrors.NewMethodNotSupported(gr, strings.ToLower(r.Method))
}

// readBody reads a request body up to the API server's limit.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	defer r.Body.Close()
	lr := &io.LimitedReader{R: r.Body, N: maxRequestBodyBytes + 1}
	data, err := io.ReadAll(lr)
	if err != nil {
		return nil, badRequest("read the request body: %v", err)
	}
	if lr.N <= 0 {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxRequestBodyBytes))
	}
	return data, nil
}

// decodeParameters decodes a write's query into opts (CreateOptions,
// UpdateOptions, PatchOptions or DeleteOptions) as the API server does.
func (s *server) decodeParameters(r *http.Request, opts runtime.Object) error {
	if err := s.writes.codecs.params.DecodeParameters(r.URL.Query(), metav1.SchemeGroupVersion, opts); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	return nil
}

// invalidOptions is the API server's answer for options that do not
// validate.
func invalidOptions(kind string, errs field.ErrorList) error {
	return apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: kind}, "", errs)
}

// fieldValidation is the directive a request asked for; the API server's
// default is Warn.
func fieldValidation(directive string) string {
	if directive == "" {
		return metav1.FieldValidationWarn
	}
	return directive
}

// managerOrUserAgent is the API server's field manager name for an
// Update: the client's fieldManager, else its User-Agent's product.
func managerOrUserAgent(manager, userAgent string) string {
	if manager != "" {
		return manager
	}
	m := strings.Split(userAgent, "/")[0]
	var b strings.Builder
	for _, r := range m {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > metav1validation.FieldManagerMaxLength {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writeInfo says who writes, for the flash's events and logs.
func writeInfo(r *http.Request, manager string, dryRun []string) WriteInfo {
	return WriteInfo{User: userOf(r), FieldManager: manager, DryRun: len(dryRun) > 0}
}

// userOf is the authenticated user of r ("" when the listener does not
// authenticate).
func userOf(r *http.Request) string {
	u, _ := UserFrom(r.Context())
	return u.Name
}

// updateFields records manager's ownership as the API server's
// UpdateNoErrors: a failure keeps the live object's managedFields.
func (s *server) updateFields(live, obj runtime.Object, manager string) runtime.Object {
	out, err := s.fields.Update(live, obj, manager)
	if err == nil && out != nil {
		return out
	}
	s.log.Error("api: update managed fields", "manager", manager, "name", metaOf(obj).GetName(), "err", err)
	var kept []metav1.ManagedFieldsEntry
	if live != nil {
		kept = metaOf(live).GetManagedFields()
	}
	metaOf(obj).SetManagedFields(kept)
	return obj
}

// writeObject answers a write with the object (or Status) it produced,
// as JSON or, when asked for, as a Table.
func (s *server) writeObject(w http.ResponseWriter, r *http.Request, res *resource, code int, obj runtime.Object) {
	if _, ok := obj.(*metav1.Status); !ok {
		if neg := negotiate(r.Header.Get("Accept")); neg.output == outputTable {
			t := s.table(res, []runtime.Object{obj}, metav1.IncludeMetadata, neg.tableVersion, metaOf(obj).GetResourceVersion(), true)
			w.Header().Set("Content-Type", tableContentType(neg.tableVersion))
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(t) // the client went away
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(obj) // the client went away
}

// mediaType is a Content-Type's media type without parameters ("" when
// absent or unparsable).
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// groupKind is the kind of res, for Invalid errors.
func groupKind(res *resource) schema.GroupKind {
	return schema.GroupKind{Group: res.group, Kind: res.kind}
}

func groupResource(res *resource) schema.GroupResource {
	return schema.GroupResource{Group: res.group, Resource: res.name}
}
