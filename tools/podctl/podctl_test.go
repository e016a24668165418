package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeAgent answers like the agent's API and records the requests.
type fakeAgent struct {
	t        *testing.T
	requests []string
	auth     []string
}

func (f *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests = append(f.requests, r.URL.RequestURI())
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	switch {
	case r.URL.Path == "/api/v1/namespaces/default/pods" || r.URL.Path == "/api/v1/pods":
		if !strings.Contains(r.Header.Get("Accept"), "as=Table") {
			http.Error(w, "want a Table", http.StatusNotAcceptable)
			return
		}
		http.ServeFile(w, r, "testdata/pods-table.json")
	case r.URL.Path == "/api/v1/namespaces/empty/pods":
		fmt.Fprint(w, `{"kind":"Table","apiVersion":"meta.k8s.io/v1","columnDefinitions":[{"name":"Name","type":"string"}],"rows":[]}`)
	case r.URL.Path == "/api/v1/namespaces/default/pods/web/log":
		fmt.Fprintf(w, "log of %q follow=%q\n", r.URL.Query().Get("container"), r.URL.Query().Get("follow"))
	case r.URL.Path == "/api/v1/namespaces/default/pods/missing/log":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"missing\" not found","reason":"NotFound","code":404}`)
	case r.URL.Path == "/version":
		fmt.Fprint(w, `{"major":"1","minor":"32","gitVersion":"v1.32.0-podboot"}`)
	default:
		http.NotFound(w, r)
	}
}

func runPodctl(t *testing.T, args []string, env map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		return "", "", err
	}
	cfg.KubeconfigEnv = env["KUBECONFIG"]
	cfg.Home = env["HOME"]
	var out, errOut bytes.Buffer
	cfg.Stdout, cfg.Stderr = &out, &errOut
	err = run(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return out.String(), errOut.String(), err
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCommands(t *testing.T) {
	agent := &fakeAgent{t: t}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	for _, tc := range []struct {
		name       string
		args       []string
		wantOut    string
		wantErrOut string
		wantErr    string
		wantReq    string
	}{
		{name: "get pods", args: []string{"--server", srv.URL, "get", "pods"}, wantOut: golden(t, "get-pods.txt"),
			wantReq: "/api/v1/namespaces/default/pods?includeObject=Metadata"},
		{name: "get pods -A, flags after the command", args: []string{"get", "po", "-A", "-s", srv.URL}, wantOut: golden(t, "get-pods-all.txt"),
			wantReq: "/api/v1/pods?includeObject=Metadata"},
		{name: "no pods", args: []string{"--server", srv.URL, "-n", "empty", "get", "pods"},
			wantErrOut: "No resources found in empty namespace.\n"},
		{name: "logs", args: []string{"--server", srv.URL, "logs", "web", "-c", "app", "-f"}, wantOut: "log of \"app\" follow=\"true\"\n",
			wantReq: "/api/v1/namespaces/default/pods/web/log?container=app&follow=true"},
		{name: "logs of a missing pod", args: []string{"--server", srv.URL, "logs", "missing"},
			wantErr: `Error from server (NotFound): pods "missing" not found`},
		{name: "version", args: []string{"--server", srv.URL, "version"},
			wantOut: "Client Version: " + clientVersion() + "\nServer Version: v1.32.0-podboot\n", wantReq: "/version"},
		{name: "get something else", args: []string{"--server", srv.URL, "get", "nodes"}, wantErr: "only 'get pods'"},
		{name: "unknown command", args: []string{"--server", srv.URL, "exec"}, wantErr: `unknown command "exec"`},
		{name: "logs without pod", args: []string{"--server", srv.URL, "logs"}, wantErr: "exactly one pod"},
		{name: "bad server", args: []string{"--server", "ftp://x", "get", "pods"}, wantErr: `server "ftp://x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agent.requests = nil
			out, errOut, err := runPodctl(t, tc.args, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrOut, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if tc.wantReq != "" && (len(agent.requests) != 1 || agent.requests[0] != tc.wantReq) {
				t.Errorf("requests %q, want [%q]", agent.requests, tc.wantReq)
			}
		})
	}
}

func writeKubeconfig(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const kubeconfigTemplate = `apiVersion: v1
kind: Config
current-context: %[1]s
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s
    namespace: %[3]s
users:
- name: %[1]s
  user:
    token: token-%[1]s
`

func TestFindTarget(t *testing.T) {
	dir := t.TempDir()
	a := writeKubeconfig(t, dir, "a", fmt.Sprintf(kubeconfigTemplate, "a", "http://a:1", "ns-a"))
	b := writeKubeconfig(t, dir, "b", fmt.Sprintf(kubeconfigTemplate, "b", "http://b:2", ""))
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, filepath.Join(home, ".kube"), "config", fmt.Sprintf(kubeconfigTemplate, "home", "http://home:3", ""))
	bad := writeKubeconfig(t, dir, "bad", "clusters: [")
	dangling := writeKubeconfig(t, dir, "dangling", "current-context: nope\n")
	for _, tc := range []struct {
		name                      string
		server, flag, env, home   string
		wantServer, wantNS, token string
		wantErr                   string
	}{
		{name: "--kubeconfig", flag: a, env: b, home: home, wantServer: "http://a:1", wantNS: "ns-a", token: "token-a"},
		{name: "$KUBECONFIG first file wins", env: b + string(os.PathListSeparator) + a, home: home, wantServer: "http://b:2", token: "token-b"},
		{name: "$KUBECONFIG skips missing files", env: filepath.Join(dir, "missing") + string(os.PathListSeparator) + a, wantServer: "http://a:1", wantNS: "ns-a", token: "token-a"},
		{name: "~/.kube/config", home: home, wantServer: "http://home:3", token: "token-home"},
		{name: "--server overrides", server: "http://s:4", flag: a, wantServer: "http://s:4", wantNS: "ns-a", token: "token-a"},
		{name: "--server alone", server: "http://s:4", wantServer: "http://s:4"},
		{name: "nothing", wantErr: "no server"},
		{name: "missing --kubeconfig", flag: filepath.Join(dir, "missing"), wantErr: "missing"},
		{name: "bad yaml", flag: bad, wantErr: bad},
		{name: "dangling context", flag: dangling, wantErr: `context "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findTarget(tc.server, tc.flag, tc.env, tc.home)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Server != tc.wantServer || got.Namespace != tc.wantNS || got.User.Token != tc.token {
				t.Errorf("target %q ns %q token %q, want %q %q %q", got.Server, got.Namespace, got.User.Token, tc.wantServer, tc.wantNS, tc.token)
			}
		})
	}
}

// Over HTTPS with the kubeconfig's CA and token, and the context's
// namespace.
func TestKubeconfigTLS(t *testing.T) {
	agent := &fakeAgent{t: t}
	srv := httptest.NewTLSServer(agent)
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc := fmt.Sprintf(`current-context: board
clusters:
- name: board
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: board
  context: {cluster: board, user: admin, namespace: default}
users:
- name: admin
  user: {token: s3cret}
`, srv.URL, base64.StdEncoding.EncodeToString(ca))
	path := writeKubeconfig(t, t.TempDir(), "config", kc)
	out, _, err := runPodctl(t, []string{"get", "pods"}, map[string]string{"KUBECONFIG": path})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(golden(t, "get-pods.txt"), out); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Bearer s3cret"}, agent.auth); diff != "" {
		t.Errorf("Authorization (-want +got):\n%s", diff)
	}
	// Without the CA the server is not trusted.
	_, _, err = runPodctl(t, []string{"--server", srv.URL, "get", "pods"}, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted server: %v, want a certificate error", err)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	if _, err := parseFlags(nil, io.Discard); err == nil {
		t.Error("no command: no error")
	}
	if _, err := parseFlags([]string{"get", "--bogus"}, io.Discard); err == nil {
		t.Error("unknown flag: no error")
	}
	cfg, err := parseFlags([]string{"logs", "--", "-weird-pod"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"logs", "-weird-pod"}, cfg.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}
