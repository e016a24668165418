package api

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/agent/store"
)

// authKubectlServer serves the fixtures behind Secure over HTTPS with a
// server certificate of the apiauth CA, as the board's listener does.
func authKubectlServer(t *testing.T, ta testAuth) *httptest.Server {
	t.Helper()
	st := store.New(func() time.Time { return t0 })
	populate(t, st)
	s := newServer(st, fakeLogs{}, Options{NodeName: "board-1", GitVersion: "v1.37.2"})
	s.now = func() time.Time { return t0 }
	tc, err := ta.creds.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc.ClientAuth = tls.RequestClientCert
	srv := httptest.NewUnstartedServer(Secure(s, ta.auth))
	srv.TLS = tc
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// writeKubeconfig writes kc into k's directory and returns its path.
func writeKubeconfig(t *testing.T, k *kubectl, name string, kc []byte, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(k.dir, name)
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubectlAuth runs the stock kubectl with each kind of credential:
// what a person sees when it is refused is kube-apiserver's wording.
func TestKubectlAuth(t *testing.T) {
	ta := newTestAuth(t)
	srv := authKubectlServer(t, ta)
	k := newKubectl(t, srv.URL)

	clientKubeconfig := func(name, user string, groups []string) string {
		key, csr, err := apiauth.NewClientKey(user, groups)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ta.creds.SignClient(csr, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		kc, err := apiauth.ClientKubeconfig(srv.URL, ta.creds.CACert, false, user, cert, key)
		return writeKubeconfig(t, k, name, kc, err)
	}
	tokenKubeconfig := func(name, token string) string {
		c := apiauth.Credentials{CACert: ta.creds.CACert, Token: token}
		kc, err := c.Kubeconfig(srv.URL)
		return writeKubeconfig(t, k, name, kc, err)
	}
	admin := tokenKubeconfig("admin-token", testToken)
	alice := clientKubeconfig("alice", "alice", []string{apiauth.GroupAdmin})
	dash := clientKubeconfig("dash", "dash", []string{apiauth.GroupReadOnly})
	readOnly := tokenKubeconfig("read-only-token", testReadOnlyToken)
	plain := clientKubeconfig("plain", "plain", nil)

	for _, kc := range []string{admin, alice, dash, readOnly} {
		out := k.ok("--kubeconfig", kc, "get", "pods")
		if !strings.Contains(out, "web ") || !strings.Contains(out, "crash ") {
			t.Errorf("kubectl --kubeconfig %s get pods:\n%s", filepath.Base(kc), out)
		}
		if out := k.ok("--kubeconfig", kc, "logs", "web", "-c", "nginx"); out == "" {
			t.Errorf("kubectl --kubeconfig %s logs web: nothing", filepath.Base(kc))
		}
	}

	// Refused: exit status 1 and kube-apiserver's message.
	refused := []struct {
		name, kubeconfig string
		args             []string
		want             string
	}{
		{"read-only certificate deletes", dash, []string{"delete", "pod", "web"},
			`Error from server (Forbidden): pods "web" is forbidden: User "dash" cannot delete resource "pods" in API group "" in the namespace "default"`},
		{"read-only token deletes", readOnly, []string{"delete", "pod", "web"},
			`Error from server (Forbidden): pods "web" is forbidden: User "read-only" cannot delete resource "pods" in API group "" in the namespace "default"`},
		{"read-only token labels", readOnly, []string{"label", "pod", "web", "x=y"},
			`Error from server (Forbidden): pods "web" is forbidden: User "read-only" cannot patch resource "pods" in API group "" in the namespace "default"`},
		{"read-only certificate creates a namespace", dash, []string{"create", "namespace", "custom"},
			`Error from server (Forbidden): namespaces is forbidden: User "dash" cannot create resource "namespaces" in API group "" at the cluster scope`},
		{"read-only certificate execs", dash, []string{"exec", "web", "-c", "nginx", "--", "true"},
			`Error from server (Forbidden): pods "web" is forbidden: User "dash" cannot create resource "pods/exec" in API group "" in the namespace "default"`},
		{"no group lists pods", plain, []string{"get", "pods"},
			`Error from server (Forbidden): pods is forbidden: User "plain" cannot list resource "pods" in API group "" in the namespace "default"`},
		// Refused at discovery (a fresh cache), kubectl words it so.
		{"wrong token", "", []string{"--cache-dir", filepath.Join(k.dir, "fresh-cache"), "--certificate-authority", filepath.Join(k.dir, "ca.crt"), "--token", "wrong", "get", "pods"},
			"error: You must be logged in to the server (the server has asked for the client to provide credentials)"},
		{"wrong token past discovery", "", []string{"--certificate-authority", filepath.Join(k.dir, "ca.crt"), "--token", "wrong", "get", "--raw", "/api/v1/pods"},
			"error: You must be logged in to the server (Unauthorized)"},
	}
	if err := os.WriteFile(filepath.Join(k.dir, "ca.crt"), ta.creds.CACert, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.kubeconfig != "" {
				args = append([]string{"--kubeconfig", tt.kubeconfig}, args...)
			}
			out, errOut, err := k.run(args...)
			if code := exitCode(err); code != 1 {
				t.Errorf("kubectl %v: exit status %d (%v), want 1\nstdout:\n%s\nstderr:\n%s", tt.args, code, err, out, errOut)
			}
			if got := lastLine(errOut); got != tt.want {
				t.Errorf("kubectl %v: stderr\n%s\nwant\n%s", tt.args, got, tt.want)
			}
		})
	}

	// Who am I, and what may I do: every authenticated user may ask.
	if out := k.ok("--kubeconfig", dash, "auth", "whoami"); out != "ATTRIBUTE   VALUE\nUsername    dash\nGroups      [podboot:read-only system:authenticated]\n" {
		t.Errorf("kubectl auth whoami as dash:\n%s", out)
	}
	if out := k.ok("--kubeconfig", plain, "auth", "whoami"); !strings.Contains(out, "Username    plain\n") {
		t.Errorf("kubectl auth whoami as plain:\n%s", out)
	}
	for _, tt := range []struct {
		kubeconfig string
		args       []string
		want       string
	}{
		{dash, []string{"list", "pods"}, "yes"},
		{dash, []string{"get", "pods/log"}, "yes"},
		{dash, []string{"delete", "pods"}, "no"},
		{dash, []string{"create", "pods", "--subresource", "exec"}, "no"},
		{dash, []string{"get", "/metrics"}, "yes"},
		{dash, []string{"post", "/podboot/v1/reboot"}, "no"},
		{readOnly, []string{"watch", "configmaps", "-n", "kube-system"}, "yes"},
		{plain, []string{"list", "pods"}, "no"},
		{plain, []string{"get", "/api"}, "yes"},
		{alice, []string{"delete", "namespaces"}, "yes"},
		{admin, []string{"create", "pods", "--subresource", "exec"}, "yes"},
	} {
		out, errOut, err := k.run(append([]string{"--kubeconfig", tt.kubeconfig, "auth", "can-i"}, tt.args...)...)
		wantCode := 0
		if tt.want == "no" {
			wantCode = 1
		}
		if strings.TrimSpace(out) != tt.want || exitCode(err) != wantCode {
			t.Errorf("kubectl --kubeconfig %s auth can-i %v: %q (exit %d), want %q (exit %d)\n%s", filepath.Base(tt.kubeconfig), tt.args, out, exitCode(err), tt.want, wantCode, errOut)
		}
	}

	// An admin is let through to the handler (which answers writes as it
	// does, whatever that is): never refused by authorization.
	for _, kc := range []string{admin, alice} {
		_, errOut, _ := k.run("--kubeconfig", kc, "delete", "pod", "web")
		if strings.Contains(errOut, "Forbidden") || strings.Contains(errOut, "logged in") {
			t.Errorf("kubectl --kubeconfig %s delete pod web was refused:\n%s", filepath.Base(kc), errOut)
		}
	}
}

// TestKubectlWithoutCredentials: kubectl over HTTPS with a user without
// credentials prompts for a user name (which fails without a terminal),
// so the request without credentials is made over plain HTTP, as over
// vsock; it is told to log in.
func TestKubectlWithoutCredentials(t *testing.T) {
	ta := newTestAuth(t)
	st := store.New(func() time.Time { return t0 })
	populate(t, st)
	srv := httptest.NewServer(Secure(newServer(st, fakeLogs{}, Options{GitVersion: "v1.37.2"}), ta.auth))
	defer srv.Close()
	k := newKubectl(t, srv.URL)
	out, errOut, err := k.run("get", "pods")
	if code := exitCode(err); code != 1 {
		t.Errorf("exit status %d (%v), want 1\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	const want = "error: You must be logged in to the server (the server has asked for the client to provide credentials)"
	if got := lastLine(errOut); got != want {
		t.Errorf("stderr\n%s\nwant\n%s", got, want)
	}
}

// exitCode is a command's exit status: 0 for nil, -1 when it did not run.
func exitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// lastLine is kubectl's message: the last line of its stderr, after the
// klog lines it logs while retrying discovery.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
