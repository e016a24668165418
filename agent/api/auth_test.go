package api

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

const testToken = "0123456789abcdef"

func newAuthServer(t *testing.T) *httptest.Server {
	t.Helper()
	st := store.New(func() time.Time { return t0 })
	populate(t, st)
	s := newServer(st, fakeLogs{}, Options{NodeName: "board-1", GitVersion: "v1.37.2"})
	s.now = func() time.Time { return t0 }
	srv := httptest.NewTLSServer(Authenticate(s, testToken))
	t.Cleanup(srv.Close)
	return srv
}

// unauthorized is kube-apiserver's body for a failed authentication.
var unauthorized = metav1.Status{
	TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
	Status:   metav1.StatusFailure,
	Message:  "Unauthorized",
	Reason:   metav1.StatusReasonUnauthorized,
	Code:     401,
}

func TestAuthenticate(t *testing.T) {
	srv := newAuthServer(t)
	tests := []struct {
		name, path, auth string
		wantCode         int
	}{
		{"no token on pods", "/api/v1/pods", "", 401},
		{"no token on discovery", "/api", "", 401},
		{"no token on kubelet pods", "/pods", "", 401},
		{"no token on poweroff", "/podboot/v1/poweroff", "", 401},
		{"no token on an unknown path", "/nope", "", 401},
		{"wrong token", "/api/v1/pods", "Bearer wrong", 401},
		{"token prefix", "/api/v1/pods", "Bearer " + testToken[:8], 401},
		{"token with suffix", "/api/v1/pods", "Bearer " + testToken + "x", 401},
		{"empty bearer", "/api/v1/pods", "Bearer ", 401},
		{"basic auth", "/api/v1/pods", "Basic dXNlcjpwYXNz", 401},
		{"right token", "/api/v1/pods", "Bearer " + testToken, 200},
		{"scheme is case-insensitive", "/api/v1/pods", "bearer " + testToken, 200},
		{"right token on an unknown path", "/nope", "Bearer " + testToken, 404},
		{"anonymous healthz", "/healthz", "", 200},
		{"anonymous livez", "/livez", "", 200},
		{"anonymous readyz", "/readyz", "", 200},
		{"anonymous version", "/version", "", 200},
		{"anonymous version/", "/version/", "", 200},
		{"another scheme is anonymous", "/healthz", "Basic dXNlcjpwYXNz", 200},
		// kube-apiserver rejects bad credentials before authorization,
		// even on the public paths.
		{"wrong token on healthz", "/healthz", "Bearer wrong", 401},
		{"right token on healthz", "/healthz", "Bearer " + testToken, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("GET %s with %q = %d, want %d", tt.path, tt.auth, resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode != 401 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(unauthorized, decode[metav1.Status](t, body)); diff != "" {
				t.Errorf("401 body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthenticateEmptyTokenRejectsAll(t *testing.T) {
	srv := httptest.NewServer(Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ""))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/pods", nil)
	req.Header.Set("Authorization", "Bearer ")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("empty configured token and empty bearer: %d, want 401", resp.StatusCode)
	}
}

// TestKubectlUnauthorized checks what a person sees with the real kubectl.
// Like against kube-apiserver, kubectl 1.32 words a 401 during discovery
// as "You must be logged in to the server (the server has asked for the
// client to provide credentials)". kubectl sends a token over TLS only,
// and over TLS without any credentials it prompts for a user name (so the
// no-credentials case is run over plain HTTP).
func TestKubectlUnauthorized(t *testing.T) {
	st := store.New(func() time.Time { return t0 })
	populate(t, st)
	plain := httptest.NewServer(Authenticate(newServer(st, fakeLogs{}, Options{GitVersion: "v1.37.2"}), testToken))
	defer plain.Close()
	const loggedIn = "error: You must be logged in to the server"
	_, errOut, err := newKubectl(t, plain.URL).run("get", "pods")
	if err == nil || !strings.Contains(errOut, loggedIn) {
		t.Errorf("kubectl get pods without a token: err=%v, want %q in stderr:\n%s", err, loggedIn, errOut)
	}

	srv := newAuthServer(t)
	k := newKubectl(t, srv.URL)
	ca := filepath.Join(k.dir, "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = k.run("--certificate-authority", ca, "--token", "wrong", "get", "pods")
	if err == nil || !strings.Contains(errOut, loggedIn) {
		t.Errorf("kubectl get pods with a wrong token: err=%v, want %q in stderr:\n%s", err, loggedIn, errOut)
	}
	// Past discovery, the Status's reason reaches the user.
	_, errOut, err = k.run("--certificate-authority", ca, "--token", "wrong", "get", "--raw", "/api/v1/pods")
	if err == nil || !strings.Contains(errOut, "Unauthorized") {
		t.Errorf("kubectl get --raw with a wrong token: err=%v, want Unauthorized in stderr:\n%s", err, errOut)
	}
	out := k.ok("--certificate-authority", ca, "--token", testToken, "get", "pods", "-A")
	if !strings.Contains(out, "NAMESPACE") {
		t.Errorf("kubectl get pods with the token:\n%s", out)
	}
}
