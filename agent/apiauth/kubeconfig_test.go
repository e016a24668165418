package apiauth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/internal/testenv"
)

func kubectl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl")
	if err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH: %v", err)
	}
	return p
}

// TestKubeconfigKubectlView checks that kubectl reads the file and sees
// what was meant.
func TestKubeconfigKubectlView(t *testing.T) {
	kc := kubectl(t)
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "out", "kubeconfig")
	if err := c.WriteKubeconfig(path, "https://127.0.0.1:6443"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode: %v %v, want 0600", st.Mode(), err)
	}
	out, err := exec.Command(kc, "config", "view", "--raw", "-o", "yaml", "--kubeconfig", path).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl config view: %v\n%s", err, out)
	}
	var got struct {
		CurrentContext string `json:"current-context"`
		Clusters       []struct {
			Name    string
			Cluster struct {
				Server string
				CAData []byte `json:"certificate-authority-data"`
			}
		}
		Users []struct {
			Name string
			User struct{ Token string }
		}
		Contexts []struct {
			Name    string
			Context struct{ Cluster, User string }
		}
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("parse kubectl config view output: %v\n%s", err, out)
	}
	summary := fmt.Sprintf("current=%s clusters=%d users=%d contexts=%d", got.CurrentContext, len(got.Clusters), len(got.Users), len(got.Contexts))
	if diff := cmp.Diff("current=podboot clusters=1 users=1 contexts=1", summary); diff != "" {
		t.Fatalf("kubectl config view (-want +got):\n%s\n%s", diff, out)
	}
	if got.Clusters[0].Cluster.Server != "https://127.0.0.1:6443" {
		t.Errorf("server = %q", got.Clusters[0].Cluster.Server)
	}
	if string(got.Clusters[0].Cluster.CAData) != string(c.CACert) {
		t.Error("certificate-authority-data is not the CA")
	}
	if got.Users[0].User.Token != c.Token {
		t.Error("token differs")
	}
	if ctx := got.Contexts[0]; ctx.Name != "podboot" || ctx.Context.Cluster != "podboot" || ctx.Context.User != "podboot" {
		t.Errorf("context = %+v", ctx)
	}
}

// TestKubeconfigKubectlTLS points kubectl at a TLS server presenting the
// generated certificate and checking the token: the kubeconfig is enough
// for kubectl to verify the server and authenticate.
func TestKubeconfigKubectlTLS(t *testing.T) {
	kc := kubectl(t)
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+c.Token {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "authenticated")
	}))
	srv.TLS = sc
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	dir := t.TempDir()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		path := filepath.Join(dir, host)
		if err := c.WriteKubeconfig(path, "https://"+net.JoinHostPort(host, port)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, kc, "--kubeconfig", path, "get", "--raw", "/anything").CombinedOutput()
		cancel()
		if err != nil || strings.TrimSpace(string(out)) != "authenticated" {
			t.Errorf("kubectl get --raw via %s: %v\n%s", host, err, out)
		}
	}

	// A CA that did not sign the server certificate is refused.
	other, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	other.Token = c.Token
	path := filepath.Join(dir, "other")
	if err := other.WriteKubeconfig(path, "https://127.0.0.1:"+port); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kc, "--kubeconfig", path, "get", "--raw", "/anything").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate signed by unknown authority") {
		t.Errorf("kubectl with another CA: err=%v, want unknown authority\n%s", err, out)
	}
}
