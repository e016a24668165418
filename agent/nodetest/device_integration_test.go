package nodetest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationDeviceListeners runs the real podagent as a board's PID 1
// would (--device-listeners, --power-pid of its parent) with a private
// containerd and an empty flash: it generates the API credentials on this
// first boot, serves HTTPS with the token, and its power endpoints signal
// the parent, which is this test.
func TestIntegrationDeviceListeners(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	env := testenv.Containerd(t)
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "podagent")
	build := exec.Command("go", "build", "-o", bin, "./agent/cmd/podagent")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build podagent: %v\n%s", err, out)
	}

	flash := t.TempDir()
	if err := os.MkdirAll(filepath.Join(flash, "pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	device := fmt.Sprintf("hostname: board-1\napi:\n  listen: 127.0.0.1:%d\n  vsockPort: -1\n", port)
	if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(device), 0o644); err != nil {
		t.Fatal(err)
	}

	// The agent signals its parent: catch what it sends.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR2, syscall.SIGTERM)
	defer signal.Stop(sigs)

	stderr := &lockedBuffer{}
	cmd := exec.Command(bin, "--flash", flash, "--state", env.StateDir, "--containerd", env.Address(),
		"--runc", env.RuncPath, "--runc-root", env.RuncRoot, "--node-name", "board-1",
		"--device-listeners", "--power-pid", fmt.Sprint(os.Getpid()))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("podagent power-off: %v\n%s", err, stderr)
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Errorf("podagent did not stop within a minute\n%s", stderr)
		}
	}()

	// First boot: the credentials appear on the flash, then HTTPS answers.
	var creds *apiauth.Credentials
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := apiauth.LoadFlash(flash)
		if err == nil {
			creds = c
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("podagent exited: %v\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no credentials on the flash after 60s: %v\n%s", err, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pool, err := creds.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for {
		resp, err := hc.Get(server + "/readyz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPS API not answering after 60s: %v\n%s", err, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := creds.WriteKubeconfig(kc, server); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kc, "--cache-dir", filepath.Join(filepath.Dir(kc), "cache")}, args...)...)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := kubectl("get", "nodes")
	if err != nil || !strings.Contains(out, "board-1") || !strings.Contains(out, "Ready") {
		t.Errorf("kubectl get nodes through the generated kubeconfig: %v\n%s", err, out)
	}
	out, err = kubectl("get", "pods")
	if err != nil || !strings.Contains(out, "No resources found in default namespace.") {
		t.Errorf("kubectl get pods: %v\n%s", err, out)
	}
	out, err = kubectl("--token", "wrong", "get", "pods")
	if err == nil || !strings.Contains(out, "You must be logged in to the server") {
		t.Errorf("kubectl get pods with a wrong token: %v\n%s", err, out)
	}

	// Power: 202 and the signal reaches the parent.
	post := func(path string) (int, string) {
		req, _ := http.NewRequest("POST", server+path, nil)
		req.Header.Set("Authorization", "Bearer "+creds.Token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Status
	}
	for _, tc := range []struct {
		path string
		want syscall.Signal
	}{{"/podboot/v1/poweroff", syscall.SIGUSR2}, {"/podboot/v1/reboot", syscall.SIGTERM}} {
		if code, status := post(tc.path); code != http.StatusAccepted {
			t.Errorf("POST %s: %s, want 202", tc.path, status)
			continue
		}
		select {
		case got := <-sigs:
			if got != tc.want {
				t.Errorf("POST %s: parent got %v, want %v", tc.path, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("POST %s: no signal reached the parent", tc.path)
		}
	}
	if !strings.Contains(stderr.String(), "wrote API credentials") {
		t.Errorf("first boot did not log the credentials it wrote:\n%s", stderr)
	}
}
