package podagent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/internal/testenv"
)

// buildPodctl builds tools/podctl from this checkout.
func buildPodctl(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Unavailable(t, "needs the go command to build podctl: %v", err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "podctl")
	cmd := exec.Command(goBin, "build", "-o", out, "./tools/podctl")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build podctl: %v\n%s", err, b)
	}
	return out
}

func requireKubectl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kubectl")
	if err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH: %v", err)
	}
	return p
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type recordingPower struct {
	mu    sync.Mutex
	calls []string
}

func (p *recordingPower) PowerOff() error { return p.record("poweroff") }
func (p *recordingPower) Reboot() error   { return p.record("reboot") }
func (p *recordingPower) record(s string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, s)
	return nil
}

// TestIntegrationHTTPSKubeconfig serves the API on device.yaml's HTTPS
// listener from credentials generated on an empty flash (a first boot),
// writes the kubeconfig from the flash as the image builder does, and
// drives it with the real kubectl and podctl.
func TestIntegrationHTTPSKubeconfig(t *testing.T) {
	kubectl := requireKubectl(t)
	podctl := buildPodctl(t)

	st := store.New(time.Now)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", CreationTimestamp: metav1.Now()},
		Spec:       corev1.PodSpec{NodeName: "board-1", Containers: []corev1.Container{{Name: "web", Image: "busybox"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if err := st.Put(pod); err != nil {
		t.Fatal(err)
	}
	power := &recordingPower{}
	handler := api.New(st, nil, api.Options{NodeName: "board-1", GitVersion: KubernetesVersion, Power: power})

	flash := t.TempDir()
	addr := freeLoopbackAddr(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := Config{FlashDir: flash, NodeName: "board-1", DeviceListeners: true}
	listeners, keeper, err := cfg.listeners(device.API{Listen: addr, VsockPort: -1}, handler, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(listeners) != 1 || listeners[0].name != "https" || keeper == nil {
		t.Fatalf("listeners for api.listen=%s vsockPort=-1: %d (%v), keeper %v; want https only", addr, len(listeners), listeners, keeper)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		listeners[0].serve(ctx, log)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		listeners[0].srv.Shutdown(context.Background())
		<-done
	})

	creds, err := apiauth.LoadFlash(flash)
	if err != nil {
		t.Fatalf("first boot left no credentials on the flash: %v\n%s", err, logs.String())
	}
	pool, err := creds.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	waitHTTPS(t, "https://"+addr+"/healthz", pool, &logs)

	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	kc := filepath.Join(dir, "kubeconfig")
	if err := creds.WriteKubeconfig(kc, "https://127.0.0.1:"+port); err != nil {
		t.Fatal(err)
	}
	kcLocalhost := filepath.Join(dir, "kubeconfig-localhost")
	if err := creds.WriteKubeconfig(kcLocalhost, "https://localhost:"+port); err != nil {
		t.Fatal(err)
	}
	wrong := *creds
	wrong.Token = strings.Repeat("0", 64)
	kcWrong := filepath.Join(dir, "kubeconfig-wrong")
	if err := wrong.WriteKubeconfig(kcWrong, "https://127.0.0.1:"+port); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, creds.CACert, 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(env []string, name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append([]string{"HOME=" + dir, "PATH=/usr/bin:/bin"}, env...)
		cmd.Stdin = nil
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	for _, tc := range []struct {
		name    string
		env     []string
		bin     string
		args    []string
		wantErr bool
		want    string
	}{
		{name: "kubectl get pods", bin: kubectl, args: []string{"--kubeconfig", kc, "get", "pods"}, want: "web "},
		{name: "kubectl via localhost", bin: kubectl, args: []string{"--kubeconfig", kcLocalhost, "get", "pods", "-o", "name"}, want: "pod/web"},
		{name: "kubectl $KUBECONFIG", env: []string{"KUBECONFIG=" + kc}, bin: kubectl, args: []string{"get", "pods", "-o", "wide"}, want: "board-1"},
		{name: "kubectl wrong token", bin: kubectl, args: []string{"--kubeconfig", kcWrong, "get", "pods"}, wantErr: true,
			want: "error: You must be logged in to the server"},
		// Past discovery, kube-apiserver's Status reason reaches the user.
		// (Over TLS without any credentials kubectl prompts for a user
		// name instead of asking: that case is podctl's below, and
		// agent/api's test over plain HTTP.)
		{name: "kubectl --raw with a wrong token", bin: kubectl, args: []string{"--kubeconfig", kcWrong, "get", "--raw", "/api/v1/pods"},
			wantErr: true, want: "Unauthorized"},
		{name: "podctl get pods", bin: podctl, args: []string{"--kubeconfig", kc, "get", "pods"}, want: "web "},
		{name: "podctl $KUBECONFIG", env: []string{"KUBECONFIG=" + kc}, bin: podctl, args: []string{"get", "pods"}, want: "web "},
		{name: "podctl no token", bin: podctl, args: []string{"--server", "https://127.0.0.1:" + port, "--certificate-authority", ca, "get", "pods"},
			wantErr: true, want: "error: You must be logged in to the server (Unauthorized)"},
		{name: "podctl --token", bin: podctl, args: []string{"--server", "https://127.0.0.1:" + port, "--certificate-authority", ca, "--token", creds.Token, "get", "pods"},
			want: "web "},
		{name: "podctl without the CA", bin: podctl, args: []string{"--server", "https://127.0.0.1:" + port, "--token", creds.Token, "get", "pods"},
			wantErr: true, want: "certificate signed by unknown authority"},
		{name: "podctl poweroff", bin: podctl, args: []string{"--kubeconfig", kc, "poweroff"}, want: "powering off"},
		{name: "podctl reboot", bin: podctl, args: []string{"--kubeconfig", kc, "reboot"}, want: "rebooting"},
		{name: "podctl poweroff with a wrong token", bin: podctl, args: []string{"--kubeconfig", kcWrong, "poweroff"}, wantErr: true,
			want: "error: You must be logged in to the server (Unauthorized)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.env, tc.bin, tc.args...)
			if (err != nil) != tc.wantErr || !strings.Contains(out, tc.want) {
				t.Errorf("%s %q: err=%v (want error: %v), want %q in:\n%s", filepath.Base(tc.bin), tc.args, err, tc.wantErr, tc.want, out)
			}
		})
	}
	power.mu.Lock()
	defer power.mu.Unlock()
	if got := strings.Join(power.calls, ","); got != "poweroff,reboot" {
		t.Errorf("power calls %q, want poweroff,reboot (the wrong token must not reach it)", got)
	}
	// The anonymous probes answer without a token.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://127.0.0.1:" + port + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("anonymous /version: %d", resp.StatusCode)
	}
}

func waitHTTPS(t *testing.T, url string, pool *x509.CertPool, logs fmt.Stringer) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var err error
	for range 300 {
		var resp *http.Response
		if resp, err = c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered: %v\n%s", url, err, logs)
}

// tornFlash writes a whole credentials set, then breaks it as a power cut
// or a failing card would; it returns the set clients were handed.
func tornFlash(t *testing.T, flash string, tear func(api string, other *apiauth.Credentials)) *apiauth.Credentials {
	t.Helper()
	orig, err := apiauth.Generate([]string{"localhost", "board-1"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	other, err := apiauth.Generate([]string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := orig.WriteFlash(flash); err != nil {
		t.Fatal(err)
	}
	tear(filepath.Join(flash, apiauth.Dir), other)
	return orig
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// After a torn reissue, or any other torn or corrupt set whose CA is
// intact, the next start serves HTTPS with a certificate that verifies
// against the unchanged CA the kubeconfigs hold, and the token they hold
// still works.
func TestHTTPSServesAfterATornSet(t *testing.T) {
	tests := []struct {
		name string
		tear func(t *testing.T, api string, other *apiauth.Credentials)
	}{
		{"reissue cut between the key and the certificate", func(t *testing.T, api string, other *apiauth.Credentials) {
			mustWrite(t, filepath.Join(api, apiauth.KeyFile), other.Key)
		}},
		{"truncated certificate", func(t *testing.T, api string, other *apiauth.Credentials) {
			mustWrite(t, filepath.Join(api, apiauth.CertFile), []byte("-----BEGIN CERTIFICATE-----\nMIIB"))
		}},
		{"missing key", func(t *testing.T, api string, other *apiauth.Credentials) {
			os.Remove(filepath.Join(api, apiauth.KeyFile))
		}},
		{"missing certificate and a temporary directory left", func(t *testing.T, api string, other *apiauth.Credentials) {
			os.Remove(filepath.Join(api, apiauth.CertFile))
			if err := os.Mkdir(filepath.Join(filepath.Dir(api), ".api-123"), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flash := t.TempDir()
			orig := tornFlash(t, flash, func(api string, other *apiauth.Credentials) { tt.tear(t, api, other) })
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			addr := freeLoopbackAddr(t)
			cfg := Config{FlashDir: flash, NodeName: "board-1", DeviceListeners: true}
			mux := http.NewServeMux()
			mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
			listeners, keeper, err := cfg.listeners(device.API{Listen: addr, VsockPort: -1}, mux, log)
			if err != nil {
				t.Fatal(err)
			}
			if len(listeners) != 1 || keeper == nil {
				t.Fatalf("no HTTPS listener after a torn set:\n%s", logs.String())
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				listeners[0].serve(ctx, log)
				close(done)
			}()
			t.Cleanup(func() {
				cancel()
				listeners[0].srv.Shutdown(context.Background())
				<-done
			})
			pool, err := orig.CertPool()
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(addr)
			for _, host := range []string{"127.0.0.1", "localhost"} {
				c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
				var resp *http.Response
				for range 100 {
					req, _ := http.NewRequest("GET", "https://"+net.JoinHostPort(host, port)+"/api", nil)
					req.Header.Set("Authorization", "Bearer "+orig.Token)
					if resp, err = c.Do(req); err == nil {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				if err != nil {
					t.Fatalf("HTTPS to %s with the kubeconfig's CA: %v\n%s", host, err, logs.String())
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("HTTPS to %s with the kubeconfig's token: %s", host, resp.Status)
				}
			}
		})
	}
}

// A CA that is gone is not replaced: HTTPS stays off, the log says what a
// person must do, and the flash is left as it was for them.
func TestHTTPSOffWhenTheCAIsGone(t *testing.T) {
	flash := t.TempDir()
	tornFlash(t, flash, func(api string, _ *apiauth.Credentials) { os.Remove(filepath.Join(api, apiauth.CACertFile)) })
	before := snapshotDir(t, flash)
	var logs syncBuffer
	cfg := Config{FlashDir: flash, NodeName: "board-1", DeviceListeners: true}
	listeners, keeper, err := cfg.listeners(device.API{Listen: freeLoopbackAddr(t), VsockPort: -1}, http.NotFoundHandler(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(listeners) != 0 || keeper != nil {
		t.Fatalf("HTTPS served with the CA gone (a new CA?): %d listeners\n%s", len(listeners), logs.String())
	}
	for _, want := range []string{"HTTPS API listener off", "ca.crt", "not replaced", "restore", "delete"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
	if after := snapshotDir(t, flash); after != before {
		t.Errorf("the flash changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
