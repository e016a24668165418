package api

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const kubectlPath = "/usr/bin/kubectl"

// kubectl runs the real kubectl against a test server.
type kubectl struct {
	t      *testing.T
	server string
	dir    string
}

func newKubectl(t *testing.T, server string) *kubectl {
	t.Helper()
	if _, err := os.Stat(kubectlPath); err != nil {
		if os.Getenv("PODBOOT_INTEGRATION") == "1" {
			t.Fatalf("kubectl tests need %s: %v", kubectlPath, err)
		}
		t.Skipf("kubectl tests need %s (install kubectl v1.32 there; PODBOOT_INTEGRATION=1 makes this a failure)", kubectlPath)
	}
	return &kubectl{t: t, server: server, dir: t.TempDir()}
}

func (k *kubectl) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--server", k.server, "--cache-dir", filepath.Join(k.dir, "cache")}, args...)
	cmd := exec.CommandContext(ctx, kubectlPath, full...)
	cmd.Env = []string{"HOME=" + k.dir, "KUBECONFIG=" + filepath.Join(k.dir, "kubeconfig"), "PATH=/usr/bin:/bin"}
	return cmd
}

// run returns kubectl's stdout, stderr and error.
func (k *kubectl) run(args ...string) (string, string, error) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := k.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// ok runs kubectl and fails the test unless it succeeds.
func (k *kubectl) ok(args ...string) string {
	k.t.Helper()
	out, errOut, err := k.run(args...)
	if err != nil {
		k.t.Fatalf("kubectl %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	return out
}

func TestKubectlSmoke(t *testing.T) {
	srv, _ := newTestServer(t)
	k := newKubectl(t, srv.URL)
	for _, args := range [][]string{{"get", "po", "web", "-o", "yaml"}, {"get", "po", "-o", "name"}, {"get", "po", "--show-labels"}, {"get", "po", "-L", "app,tier"}, {"get", "po", "-l", "tier notin (front)"}, {"get", "po", "-A", "--field-selector", "status.phase=Running"}, {"get", "po", "nope"}, {"get", "po", "-l", "a b"}, {"get", "po", "--field-selector", "foo=bar"}, {"logs", "web"}, {"logs", "web", "-c", "nginx", "--tail", "1", "--timestamps"}, {"logs", "crash", "--previous"}, {"logs", "-n", "other", "pending"}, {"logs", "web", "-c", "nope"}, {"get", "ns"}, {"get", "events", "--field-selector", "involvedObject.name=crash"}, {"delete", "po", "web"}} {
		out, errOut, err := k.run(append(args, "-v=6")...)
		t.Logf("kubectl %v: %v\n%s\n%s", args, err, out, errOut)
	}
}
