package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/integration"
)

// board is the agent's API as a board serves it on HTTPS: its flash's
// credentials, Secure, and the signing endpoint.
type board struct {
	srv   *httptest.Server
	creds *apiauth.Credentials
	flash string
	admin string // an admin's kubeconfig (the image builder's: the token)
}

func newBoard(t *testing.T) board {
	t.Helper()
	flash := t.TempDir()
	creds, _, err := apiauth.Ensure(flash, []string{"board-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := creds.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(time.Now)
	if err := st.Put(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", CreationTimestamp: metav1.Now()},
		Spec:       corev1.PodSpec{NodeName: "board-1", Containers: []corev1.Container{{Name: "web", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(api.CSRPath, api.CSRHandler(creds, nil))
	mux.Handle("/", api.New(st, nil, api.Options{NodeName: "board-1", GitVersion: "v1.37.2"}))
	tc, err := creds.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc.ClientAuth = tls.RequestClientCert
	srv := httptest.NewUnstartedServer(api.Secure(mux, api.Auth{
		Tokens:    []api.Token{{Token: creds.Token, User: api.User{Name: "admin", Groups: []string{api.GroupAdmin}}}},
		ClientCAs: pool,
	}))
	srv.TLS = tc
	srv.StartTLS()
	t.Cleanup(srv.Close)
	admin := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := creds.WriteKubeconfig(admin, srv.URL); err != nil {
		t.Fatal(err)
	}
	return board{srv: srv, creds: creds, flash: flash, admin: admin}
}

// clientOf reads the kubeconfig's user certificate.
func clientOf(t *testing.T, path string) (*x509.Certificate, kubeconfig) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		t.Fatal(err)
	}
	if len(kc.Users) != 1 {
		t.Fatalf("kubeconfig users: %+v", kc.Users)
	}
	block, _ := pem.Decode(kc.Users[0].User.ClientCertificateData)
	if block == nil {
		t.Fatalf("no client certificate in %s", b)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, kc
}

func TestKubeconfigCommand(t *testing.T) {
	b := newBoard(t)
	dir := t.TempDir()
	dash := filepath.Join(dir, "sub", "dash.kubeconfig")
	out, _, err := runPodctl(t, []string{"--kubeconfig", b.admin, "kubeconfig", "--user", "dash", "--read-only", "--duration", "720h", "-o", dash}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `kubeconfig for user "dash" (read-only, valid for 720h0m0s) written to ` + dash + "\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if fi, err := os.Stat(dash); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", dash, fi, err)
	}
	cert, kc := clientOf(t, dash)
	if cert.Subject.CommonName != "dash" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != apiauth.GroupReadOnly {
		t.Errorf("certificate subject %v, want CN dash O %s", cert.Subject, apiauth.GroupReadOnly)
	}
	if left := time.Until(cert.NotAfter); left < 719*time.Hour || left > 720*time.Hour {
		t.Errorf("certificate valid for %s more, want 720h", left)
	}
	if kc.CurrentContext != "dash@podboot" || kc.Clusters[0].Cluster.Server != b.srv.URL || !bytes.Equal(kc.Clusters[0].Cluster.CertificateAuthorityData, b.creds.CACert) {
		t.Errorf("kubeconfig context %q, cluster %+v; want dash@podboot, %s with the board's CA", kc.CurrentContext, kc.Clusters[0].Cluster, b.srv.URL)
	}

	// The new kubeconfig works with podctl, and refuses what a read-only
	// user may not do.
	if out, _, err := runPodctl(t, []string{"--kubeconfig", dash, "get", "pods"}, nil); err != nil || !strings.Contains(out, "web") {
		t.Errorf("podctl --kubeconfig dash get pods: %v\n%s", err, out)
	}
	_, _, err = runPodctl(t, []string{"--kubeconfig", dash, "kubeconfig", "--user", "eve"}, nil)
	if want := `Error from server (Forbidden): forbidden: User "dash" cannot post path "/podboot/v1/certificatesigningrequests"`; err == nil || err.Error() != want {
		t.Errorf("a read-only user asks for a certificate: %v, want %q", err, want)
	}
	_, _, err = runPodctl(t, []string{"--kubeconfig", dash, "poweroff"}, nil)
	if want := `Error from server (Forbidden): forbidden: User "dash" cannot post path "/podboot/v1/poweroff"`; err == nil || err.Error() != want {
		t.Errorf("a read-only user powers off: %v, want %q", err, want)
	}

	// An admin's, to stdout.
	out, _, err = runPodctl(t, []string{"--kubeconfig", b.admin, "kubeconfig", "--user", "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := filepath.Join(dir, "alice.kubeconfig")
	if err := os.WriteFile(alice, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if cert, _ := clientOf(t, alice); cert.Subject.CommonName != "alice" || cert.Subject.Organization[0] != apiauth.GroupAdmin {
		t.Errorf("admin certificate subject %v", cert.Subject)
	}
	// An admin by certificate may sign in turn.
	if _, _, err := runPodctl(t, []string{"--kubeconfig", alice, "kubeconfig", "--user", "bob"}, nil); err != nil {
		t.Errorf("an admin certificate's user asks for a certificate: %v", err)
	}

	// From a mounted flash, without the board.
	offline := filepath.Join(dir, "offline.kubeconfig")
	if _, _, err := runPodctl(t, []string{"kubeconfig", "--flash", b.flash, "--server", b.srv.URL, "--user", "carol", "--read-only", "-o", offline}, nil); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runPodctl(t, []string{"--kubeconfig", offline, "get", "pods"}, nil); err != nil || !strings.Contains(out, "web") {
		t.Errorf("podctl with the --flash kubeconfig: %v\n%s", err, out)
	}

	k := newKubectlRunner(t)
	for _, kc := range []string{dash, alice, offline} {
		if out, errOut, err := k.run("--kubeconfig", kc, "get", "pods"); err != nil || !strings.Contains(out, "web") {
			t.Errorf("kubectl --kubeconfig %s get pods: %v\n%s%s", filepath.Base(kc), err, out, errOut)
		}
	}
	_, errOut, err := k.run("--kubeconfig", dash, "delete", "pod", "web")
	var ee *exec.ExitError
	if want := `Error from server (Forbidden): pods "web" is forbidden: User "dash" cannot delete resource "pods" in API group "" in the namespace "default"`; !errors.As(err, &ee) || ee.ExitCode() != 1 || strings.TrimSpace(errOut) != want {
		t.Errorf("kubectl delete as dash: %v\n%s\nwant exit status 1 and %q", err, errOut, want)
	}
}

func TestKubeconfigCommandErrors(t *testing.T) {
	b := newBoard(t)
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	noCAKey := t.TempDir()
	if _, _, err := apiauth.Ensure(noCAKey, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(noCAKey, apiauth.Dir, apiauth.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no user", []string{"--kubeconfig", b.admin, "kubeconfig"}, "kubeconfig: --user NAME is required"},
		{"arguments", []string{"--kubeconfig", b.admin, "kubeconfig", "dash"}, `kubeconfig: unexpected arguments ["dash"]`},
		{"too short", []string{"--kubeconfig", b.admin, "kubeconfig", "--user", "x", "--duration", "5m"}, "kubeconfig: --duration 5m0s: want at least 10m0s"},
		{"vsock", []string{"--vsock", "1:10250", "kubeconfig", "--user", "x"}, "client certificates need TLS: use --server or --kubeconfig, not --vsock"},
		{"plain HTTP", []string{"--server", plain.URL, "kubeconfig", "--user", "x"}, "is not HTTPS: client certificates need TLS"},
		{"wrong token", []string{"--kubeconfig", b.admin, "--token", "wrong", "kubeconfig", "--user", "x"}, "error: You must be logged in to the server (Unauthorized)"},
		{"flash without server", []string{"kubeconfig", "--flash", b.flash, "--user", "x"}, "kubeconfig --flash: --server URL is required"},
		{"flash without CA key", []string{"kubeconfig", "--flash", noCAKey, "--server", "https://board:6443", "--user", "x"}, "no CA key (ca.key is not on the flash)"},
		{"flash that is not one", []string{"kubeconfig", "--flash", t.TempDir(), "--server", "https://board:6443", "--user", "x"}, "no such file or directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runPodctl(t, tt.args, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("podctl %q: %v, want an error with %q", tt.args, err, tt.want)
			}
		})
	}
}

// The vsock client sends --token as a bearer token.
func TestVsockClientSendsToken(t *testing.T) {
	c := newVsockClient(1, 10250, "s3cret")
	var got string
	c.http.Transport = authTransport{base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Get("Authorization")
		return nil, errors.New("stop")
	}), user: c.http.Transport.(authTransport).user}
	_, _ = c.get(context.Background(), "/api/v1/pods", nil, "")
	if got != "Bearer s3cret" {
		t.Errorf("Authorization %q, want Bearer s3cret", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// kubectlRunner runs the stock kubectl with its own home and cache.
type kubectlRunner struct{ dir string }

func newKubectlRunner(t *testing.T) kubectlRunner {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		integration.Unavailable(t, "kubectl tests need kubectl v1.32 on PATH: %v", err)
	}
	return kubectlRunner{dir: t.TempDir()}
}

func (k kubectlRunner) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--cache-dir", filepath.Join(k.dir, "cache")}, args...)...)
	cmd.Env = []string{"HOME=" + k.dir, "PATH=/usr/bin:/bin"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// On the board, --vsock without --token sends the board's own token; a
// given --token wins; without either, none.
func TestVsockBoardToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("board-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, token, boardToken, want string
	}{
		{"on the board", "", file, "board-token"},
		{"--token wins", "given", file, "given"},
		{"not on a board", "", filepath.Join(t.TempDir(), "none"), ""},
		{"no board token file", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := connect(Config{Vsock: "1:10250", Token: tt.token, BoardToken: tt.boardToken})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.http.Transport.(authTransport).user.Token; got != tt.want {
				t.Errorf("token %q, want %q", got, tt.want)
			}
		})
	}
}
