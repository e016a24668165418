package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

// fakeOTA records what the API asked of it and answers as told.
type fakeOTA struct {
	status      OTAStatus
	pushErr     error
	rollbackErr error
	calls       []string
	pushed      string // the body Push read
}

func (f *fakeOTA) Status() OTAStatus {
	f.calls = append(f.calls, "status")
	return f.status
}

func (f *fakeOTA) Push(ctx context.Context, r io.Reader) (OTAStatus, error) {
	f.calls = append(f.calls, "push")
	b, err := io.ReadAll(r)
	f.pushed = string(b)
	if err != nil {
		// As the controller: a read error wrapped, maybe in a refusal.
		return OTAStatus{}, fmt.Errorf("read the bundle: %w", err)
	}
	if f.pushErr != nil {
		return OTAStatus{}, f.pushErr
	}
	return f.status, nil
}

func (f *fakeOTA) Rollback(ctx context.Context) (OTAStatus, error) {
	f.calls = append(f.calls, "rollback")
	if f.rollbackErr != nil {
		return OTAStatus{}, f.rollbackErr
	}
	return f.status, nil
}

// testRefusal is what the wiring makes of a bundle.Refusal.
type testRefusal struct{ reason, message string }

func (r *testRefusal) Error() string         { return r.message }
func (r *testRefusal) RefusalReason() string { return r.reason }

func TestOTA(t *testing.T) {
	trying := OTAStatus{Generation: 5, State: "committed", Trying: 6, Attempts: 1, Failed: []uint64{3}, Source: "oci://registry.example:5000/fleet/edge:stable"}
	committed := OTAStatus{Generation: 5, State: "committed"} // Failed nil: answered []
	status := func(code int32, reason metav1.StatusReason, msg string, causes ...metav1.StatusCause) *metav1.Status {
		st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
		if len(causes) > 0 {
			st.Details = &metav1.StatusDetails{Causes: causes}
		}
		return st
	}
	type want struct {
		Code int
		// Body is the exact JSON of a 200; Status the decoded error.
		Body   string
		Status *metav1.Status
		Calls  []string
		Pushed string
	}
	tests := []struct {
		name, method, path, body string
		ota                      *fakeOTA // nil: OTA not configured
		want                     want
	}{
		{name: "status", method: "GET", path: "/podboot/v1/ota", ota: &fakeOTA{status: trying},
			want: want{Code: 200, Calls: []string{"status"},
				Body: `{"generation":5,"state":"committed","trying":6,"failed":[3],"attempts":1,"source":"oci://registry.example:5000/fleet/edge:stable"}` + "\n"}},
		{name: "status, nothing failed", method: "GET", path: "/podboot/v1/ota/", ota: &fakeOTA{status: committed},
			want: want{Code: 200, Calls: []string{"status"}, Body: `{"generation":5,"state":"committed","failed":[]}` + "\n"}},
		{name: "status rolled back", method: "GET", path: "/podboot/v1/ota",
			ota: &fakeOTA{status: OTAStatus{Generation: 4, State: "rolled-back", Failed: []uint64{5}, Reason: "pod web: not Ready within 5m0s"}},
			want: want{Code: 200, Calls: []string{"status"},
				Body: `{"generation":4,"state":"rolled-back","failed":[5],"reason":"pod web: not Ready within 5m0s"}` + "\n"}},
		{name: "HEAD status", method: "HEAD", path: "/podboot/v1/ota", ota: &fakeOTA{status: committed},
			want: want{Code: 200, Calls: []string{"status"}, Body: `{"generation":5,"state":"committed","failed":[]}` + "\n"}},
		{name: "push", method: "POST", path: "/podboot/v1/ota/bundles", body: "bundle bytes", ota: &fakeOTA{status: trying},
			want: want{Code: 200, Calls: []string{"push"}, Pushed: "bundle bytes",
				Body: `{"generation":5,"state":"committed","trying":6,"failed":[3],"attempts":1,"source":"oci://registry.example:5000/fleet/edge:stable"}` + "\n"}},
		{name: "push refused", method: "POST", path: "/podboot/v1/ota/bundles", body: "old",
			ota: &fakeOTA{pushErr: fmt.Errorf("push: %w", &testRefusal{"Replay", "generation 4 is at or below the committed generation 5"})},
			want: want{Code: 422, Calls: []string{"push"}, Pushed: "old",
				Status: status(422, metav1.StatusReasonInvalid, "generation 4 is at or below the committed generation 5",
					metav1.StatusCause{Type: "Replay", Message: "generation 4 is at or below the committed generation 5"})}},
		{name: "push while a trial runs", method: "POST", path: "/podboot/v1/ota/bundles", body: "b",
			ota: &fakeOTA{pushErr: NewOTAConflict(errors.New("generation 6 is on trial: wait for it to commit or roll back"))},
			want: want{Code: 409, Calls: []string{"push"}, Pushed: "b",
				Status: status(409, metav1.StatusReasonConflict, "generation 6 is on trial: wait for it to commit or roll back")}},
		{name: "push fails", method: "POST", path: "/podboot/v1/ota/bundles", body: "b",
			ota: &fakeOTA{pushErr: errors.New("stage generation 6: no space left on device")},
			want: want{Code: 500, Calls: []string{"push"}, Pushed: "b",
				Status: status(500, metav1.StatusReasonInternalError, "Internal error occurred: OTA push bundle: stage generation 6: no space left on device",
					metav1.StatusCause{Message: "OTA push bundle: stage generation 6: no space left on device"})}},
		{name: "rollback", method: "POST", path: "/podboot/v1/ota/rollback",
			ota: &fakeOTA{status: OTAStatus{Generation: 4, State: "rolled-back", Failed: []uint64{5}, Reason: "rolled back by the operator"}},
			want: want{Code: 200, Calls: []string{"rollback"},
				Body: `{"generation":4,"state":"rolled-back","failed":[5],"reason":"rolled back by the operator"}` + "\n"}},
		{name: "rollback without a previous generation", method: "POST", path: "/podboot/v1/ota/rollback",
			ota: &fakeOTA{rollbackErr: NewOTAConflict(errors.New("no previous committed generation to roll back to"))},
			want: want{Code: 409, Calls: []string{"rollback"},
				Status: status(409, metav1.StatusReasonConflict, "no previous committed generation to roll back to")}},
		{name: "rollback fails", method: "POST", path: "/podboot/v1/ota/rollback",
			ota: &fakeOTA{rollbackErr: errors.New("write state: read-only file system")},
			want: want{Code: 500, Calls: []string{"rollback"},
				Status: status(500, metav1.StatusReasonInternalError, "Internal error occurred: OTA rollback: write state: read-only file system",
					metav1.StatusCause{Message: "OTA rollback: write state: read-only file system"})}},
		{name: "POST status", method: "POST", path: "/podboot/v1/ota", ota: &fakeOTA{},
			want: want{Code: 405, Status: status(405, metav1.StatusReasonMethodNotAllowed, "POST on /podboot/v1/ota is not supported: use GET")}},
		{name: "GET bundles", method: "GET", path: "/podboot/v1/ota/bundles", ota: &fakeOTA{},
			want: want{Code: 405, Status: status(405, metav1.StatusReasonMethodNotAllowed, "GET on /podboot/v1/ota/bundles is not supported: use POST")}},
		{name: "PUT rollback", method: "PUT", path: "/podboot/v1/ota/rollback", ota: &fakeOTA{},
			want: want{Code: 405, Status: status(405, metav1.StatusReasonMethodNotAllowed, "PUT on /podboot/v1/ota/rollback is not supported: use POST")}},
		{name: "not configured: status", method: "GET", path: "/podboot/v1/ota",
			want: want{Code: 501, Status: status(501, "", "OTA is not configured: device.yaml has no ota.keys")}},
		{name: "not configured: push", method: "POST", path: "/podboot/v1/ota/bundles", body: "b",
			want: want{Code: 501, Status: status(501, "", "OTA is not configured: device.yaml has no ota.keys")}},
		{name: "not configured: rollback", method: "POST", path: "/podboot/v1/ota/rollback",
			want: want{Code: 501, Status: status(501, "", "OTA is not configured: device.yaml has no ota.keys")}},
		{name: "unknown OTA path", method: "GET", path: "/podboot/v1/ota/bundles/7", ota: &fakeOTA{},
			want: want{Code: 404, Status: status(404, metav1.StatusReasonNotFound, "the server could not find the requested resource",
				metav1.StatusCause{Type: metav1.CauseTypeUnexpectedServerResponse, Message: "404 page not found"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			if tt.ota != nil {
				opts.OTA = tt.ota
			}
			s := newServer(store.New(func() time.Time { return t0 }), fakeLogs{}, opts)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			got := want{Code: rec.Code}
			if rec.Code == 200 {
				got.Body = rec.Body.String()
			} else {
				got.Status = ptr(decode[metav1.Status](t, rec.Body.Bytes()))
			}
			if tt.ota != nil {
				got.Calls, got.Pushed = tt.ota.calls, tt.ota.pushed
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", tt.method, tt.path, diff)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		})
	}
}

// A bundle over the limit is 413: refused by its Content-Length before
// the controller sees it, or cut off by the limit while it reads a
// chunked body.
func TestOTAPushTooLarge(t *testing.T) {
	tooLarge := func(limit int64) *metav1.Status {
		return &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Code: 413, Reason: metav1.StatusReasonRequestEntityTooLarge, Message: fmt.Sprintf("Request entity too large: limit is %d", limit)}
	}
	type result struct {
		Code   int
		Status *metav1.Status
		Calls  []string
		Pushed string
	}
	tests := []struct {
		name          string
		limit         int64 // 0: through ServeHTTP, MaxOTABundleSize
		body          string
		contentLength int64
		want          result
	}{
		{name: "Content-Length over 2 GiB", body: "x", contentLength: MaxOTABundleSize + 1,
			want: result{Code: 413, Status: tooLarge(MaxOTABundleSize)}},
		{name: "chunked body over the limit", limit: 4, body: "12345", contentLength: -1,
			want: result{Code: 413, Status: tooLarge(4), Calls: []string{"push"}, Pushed: "1234"}},
		{name: "Content-Length at the limit", limit: 4, body: "1234", contentLength: 4,
			want: result{Code: 200, Calls: []string{"push"}, Pushed: "1234"}},
		{name: "chunked body at the limit", limit: 4, body: "1234", contentLength: -1,
			want: result{Code: 200, Calls: []string{"push"}, Pushed: "1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ota := &fakeOTA{status: OTAStatus{Generation: 1, State: "committed"}}
			s := newServer(store.New(func() time.Time { return t0 }), fakeLogs{}, Options{OTA: ota})
			req := httptest.NewRequest("POST", OTABundlesPath, strings.NewReader(tt.body))
			req.ContentLength = tt.contentLength
			rec := httptest.NewRecorder()
			if tt.limit == 0 {
				s.ServeHTTP(rec, req)
			} else {
				s.serveOTAPush(rec, req, tt.limit)
			}
			got := result{Code: rec.Code, Calls: ota.calls, Pushed: ota.pushed}
			if rec.Code != 200 {
				got.Status = ptr(decode[metav1.Status](t, rec.Body.Bytes()))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Read-only users may read the OTA status, not push or roll back; admins
// may do all three; a user in no known group none.
func TestOTAAuthorization(t *testing.T) {
	ta := newTestAuth(t)
	ota := &fakeOTA{status: OTAStatus{Generation: 1, State: "committed"}}
	srv := secureServer(t, newServer(store.New(func() time.Time { return t0 }), fakeLogs{}, Options{OTA: ota}), ta.auth)
	plain := clientCert(t, ta.creds, "plain", []string{"developers"}, time.Now(), time.Hour)
	forbidden := func(user, verb, path string) string {
		return fmt.Sprintf(`forbidden: User %q cannot %s path %q`, user, verb, path)
	}
	tests := []struct {
		name, token  string
		cert         bool
		method, path string
		wantCode     int
		wantMessage  string // of a refusal
	}{
		{name: "admin GET status", token: testToken, method: "GET", path: OTAPath, wantCode: 200},
		{name: "admin push", token: testToken, method: "POST", path: OTABundlesPath, wantCode: 200},
		{name: "admin rollback", token: testToken, method: "POST", path: OTARollbackPath, wantCode: 200},
		{name: "read-only GET status", token: testReadOnlyToken, method: "GET", path: OTAPath, wantCode: 200},
		{name: "read-only GET status/", token: testReadOnlyToken, method: "GET", path: OTAPath + "/", wantCode: 200},
		{name: "read-only HEAD status", token: testReadOnlyToken, method: "HEAD", path: OTAPath, wantCode: 200},
		{name: "read-only push", token: testReadOnlyToken, method: "POST", path: OTABundlesPath, wantCode: 403,
			wantMessage: forbidden("read-only", "post", OTABundlesPath)},
		{name: "read-only rollback", token: testReadOnlyToken, method: "POST", path: OTARollbackPath, wantCode: 403,
			wantMessage: forbidden("read-only", "post", OTARollbackPath)},
		{name: "read-only GET bundles", token: testReadOnlyToken, method: "GET", path: OTABundlesPath, wantCode: 403,
			wantMessage: forbidden("read-only", "get", OTABundlesPath)},
		{name: "read-only POST status", token: testReadOnlyToken, method: "POST", path: OTAPath, wantCode: 403,
			wantMessage: forbidden("read-only", "post", OTAPath)},
		{name: "read-only poweroff still refused", token: testReadOnlyToken, method: "GET", path: PowerOffPath, wantCode: 403,
			wantMessage: forbidden("read-only", "get", PowerOffPath)},
		{name: "no known group GET status", cert: true, method: "GET", path: OTAPath, wantCode: 403,
			wantMessage: forbidden("plain", "get", OTAPath)},
		{name: "anonymous GET status", method: "GET", path: OTAPath, wantCode: 401, wantMessage: "Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ota.calls = nil
			var cert *tls.Certificate
			if tt.cert {
				cert = &plain
			}
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("bundle"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := clientWith(srv, cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantCode)
			}
			if tt.wantCode == 200 {
				if len(ota.calls) != 1 {
					t.Errorf("the controller was called %q, want once", ota.calls)
				}
				return
			}
			if ota.calls != nil {
				t.Errorf("a refused request reached the controller: %q", ota.calls)
			}
			if got := decode[metav1.Status](t, body).Message; got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
}
