package podagent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// TestDeviceListenersAuth: both device listeners authenticate and
// authorize with the flash's credentials: HTTPS takes the admin and
// read-only tokens and client certificates its CA signed through the
// signing endpoint; vsock (served here over plain HTTP, as it is) the
// tokens.
func TestDeviceListenersAuth(t *testing.T) {
	st := store.New(time.Now)
	if err := st.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", CreationTimestamp: metav1.Now()},
		Spec:       corev1.PodSpec{NodeName: "board-1", Containers: []corev1.Container{{Name: "web", Image: "busybox"}}},
	}); err != nil {
		t.Fatal(err)
	}
	handler := api.New(st, nil, api.Options{NodeName: "board-1", GitVersion: KubernetesVersion})
	flash := t.TempDir()
	addr := freeLoopbackAddr(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{FlashDir: flash, NodeName: "board-1", DeviceListeners: true}
	listeners, keeper, err := cfg.listeners(device.API{Listen: addr, VsockPort: 10250}, handler, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(listeners) != 2 || listeners[0].name != "https" || listeners[1].name != "vsock" || keeper == nil {
		t.Fatalf("listeners: %v, keeper %v; want https and vsock", listeners, keeper)
	}
	https := listeners[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		https.serve(ctx, log)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		https.srv.Shutdown(context.Background())
		<-done
	})
	// vsock's handler, on a plain HTTP server: AF_VSOCK is the machine's.
	vsock := httptest.NewServer(listeners[1].srv.Handler)
	defer vsock.Close()

	creds, err := apiauth.LoadFlash(flash)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := apiauth.LoadTokens(flash)
	if err != nil || tokens.ReadOnly == "" || tokens.Admin != creds.Token {
		t.Fatalf("tokens on the flash: %+v, %v; want the admin's and a read-only one", tokens, err)
	}
	if !strings.Contains(logs.String(), "wrote the API read-only token") {
		t.Errorf("the new read-only token was not logged:\n%s", logs.String())
	}
	pool, err := creds.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	waitHTTPS(t, "https://"+addr+"/healthz", pool, &logs)
	httpsClient := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	do := func(c *http.Client, base, method, path, token string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// A client certificate through the signing endpoint, as podctl
	// kubeconfig asks for one.
	sign := func(base string, c *http.Client, token, user string, groups []string) (int, *tls.Certificate) {
		key, csr, err := apiauth.NewClientKey(user, groups)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(certificatesv1.CertificateSigningRequest{
			TypeMeta:   metav1.TypeMeta{Kind: "CertificateSigningRequest", APIVersion: "certificates.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: user},
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: csr, SignerName: certificatesv1.KubeAPIServerClientSignerName,
				Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}},
		})
		code, b := do(c, base, "POST", api.CSRPath, token, body)
		if code != http.StatusCreated {
			return code, nil
		}
		var out certificatesv1.CertificateSigningRequest
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(out.Status.Certificate, key)
		if err != nil {
			t.Fatal(err)
		}
		return code, &pair
	}
	base := "https://" + addr
	code, dash := sign(base, httpsClient(nil), creds.Token, "dash", []string{api.GroupReadOnly})
	if code != http.StatusCreated {
		t.Fatalf("admin token: POST %s = %d, want 201", api.CSRPath, code)
	}
	if code, _ := sign(base, httpsClient(nil), tokens.ReadOnly, "eve", []string{api.GroupAdmin}); code != http.StatusForbidden {
		t.Errorf("read-only token: POST %s = %d, want 403", api.CSRPath, code)
	}
	if code, _ := sign(base, httpsClient(dash), "", "eve", []string{api.GroupAdmin}); code != http.StatusForbidden {
		t.Errorf("read-only certificate: POST %s = %d, want 403", api.CSRPath, code)
	}
	if code, _ := sign(vsock.URL, vsock.Client(), creds.Token, "host", []string{api.GroupReadOnly}); code != http.StatusCreated {
		t.Errorf("admin token over vsock: POST %s = %d, want 201", api.CSRPath, code)
	}
	_, alice := sign(base, httpsClient(nil), creds.Token, "alice", []string{api.GroupAdmin})

	const pods = "/api/v1/namespaces/default/pods"
	tests := []struct {
		name, base   string
		client       *http.Client
		method, path string
		token        string
		want         int
	}{
		{"https: no credentials", base, httpsClient(nil), "GET", pods, "", 401},
		{"https: no credentials on healthz", base, httpsClient(nil), "GET", "/healthz", "", 200},
		{"https: admin token", base, httpsClient(nil), "GET", pods, creds.Token, 200},
		{"https: read-only token reads", base, httpsClient(nil), "GET", pods + "/web", tokens.ReadOnly, 200},
		{"https: read-only token deletes", base, httpsClient(nil), "DELETE", pods + "/web", tokens.ReadOnly, 403},
		{"https: read-only token powers off", base, httpsClient(nil), "POST", api.PowerOffPath, tokens.ReadOnly, 403},
		{"https: read-only certificate reads", base, httpsClient(dash), "GET", pods, "", 200},
		{"https: read-only certificate deletes", base, httpsClient(dash), "DELETE", pods + "/web", "", 403},
		{"https: admin certificate", base, httpsClient(alice), "GET", pods, "", 200},
		{"vsock: no credentials", vsock.URL, vsock.Client(), "GET", pods, "", 401},
		{"vsock: no credentials on healthz", vsock.URL, vsock.Client(), "GET", "/healthz", "", 200},
		{"vsock: wrong token", vsock.URL, vsock.Client(), "GET", pods, "wrong", 401},
		{"vsock: admin token", vsock.URL, vsock.Client(), "GET", pods, creds.Token, 200},
		{"vsock: read-only token reads", vsock.URL, vsock.Client(), "GET", pods, tokens.ReadOnly, 200},
		{"vsock: read-only token deletes", vsock.URL, vsock.Client(), "DELETE", pods + "/web", tokens.ReadOnly, 403},
		{"vsock: read-only token reboots", vsock.URL, vsock.Client(), "POST", api.RebootPath, tokens.ReadOnly, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.client, tt.base, tt.method, tt.path, tt.token, nil)
			if code != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
		})
	}

	// A second start keeps the read-only token and writes nothing new.
	before, _ := os.ReadFile(filepath.Join(flash, apiauth.Dir, apiauth.ReadOnlyTokenFile))
	var logs2 syncBuffer
	if _, _, err := cfg.listeners(device.API{Listen: freeLoopbackAddr(t), VsockPort: -1}, handler, slog.New(slog.NewTextHandler(&logs2, nil))); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(flash, apiauth.Dir, apiauth.ReadOnlyTokenFile))
	if !bytes.Equal(before, after) || strings.Contains(logs2.String(), "read-only token") {
		t.Errorf("second start: read-only token %q -> %q, log:\n%s", before, after, logs2.String())
	}
}

// With HTTPS off, vsock still takes the tokens already on the flash, and
// writes nothing; with none there, only the public paths answer.
func TestVsockAuthWithHTTPSOff(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	for _, tt := range []struct {
		name    string
		flash   func(t *testing.T, dir string) apiauth.Tokens
		wantLog string
	}{
		{"tokens on the flash", func(t *testing.T, dir string) apiauth.Tokens {
			c, err := apiauth.Generate(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
			ro, _, err := apiauth.EnsureReadOnlyToken(dir)
			if err != nil {
				t.Fatal(err)
			}
			return apiauth.Tokens{Admin: c.Token, ReadOnly: ro}
		}, ""},
		{"no credentials", func(t *testing.T, dir string) apiauth.Tokens { return apiauth.Tokens{} }, "no bearer token on the flash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			flash := t.TempDir()
			tokens := tt.flash(t, flash)
			before := snapshotDir(t, flash)
			var logs syncBuffer
			cfg := Config{FlashDir: flash, NodeName: "board-1", DeviceListeners: true}
			ls, keeper, err := cfg.listeners(device.API{Listen: "off", VsockPort: 10250}, handler, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil || len(ls) != 1 || ls[0].name != "vsock" || keeper != nil {
				t.Fatalf("listeners = %v, keeper %v, err %v; want vsock only", ls, keeper, err)
			}
			if after := snapshotDir(t, flash); after != before {
				t.Errorf("the flash changed with HTTPS off:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
			}
			srv := httptest.NewServer(ls[0].srv.Handler)
			defer srv.Close()
			for _, c := range []struct {
				name, token, path string
				want              int
			}{
				{"admin token", tokens.Admin, "/api/v1/pods", 200},
				{"read-only token", tokens.ReadOnly, "/api/v1/pods", 200},
				{"no token", "", "/api/v1/pods", 401},
				{"no token on healthz", "", "/healthz", 200},
			} {
				if c.name != "no token" && c.token == "" && c.path != "/healthz" {
					continue // no such token on this flash
				}
				req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.want {
					t.Errorf("%s: GET %s = %d, want %d", c.name, c.path, resp.StatusCode, c.want)
				}
			}
		})
	}
}
