package api

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/integration"
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
		integration.Unavailable(t, "kubectl tests need %s (install kubectl v1.32 there): %v", kubectlPath, err)
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

var update = flag.Bool("update", false, "rewrite the golden files in testdata/kubectl")

// TestKubectl runs the real kubectl against the API serving the fixtures
// and compares its output with testdata/kubectl/<name>.golden, or looks
// for the lines that matter where kubectl computes times itself.
func TestKubectl(t *testing.T) {
	srv, _ := newTestServer(t)
	k := newKubectl(t, srv.URL)
	tests := []struct {
		name     string
		args     []string
		golden   bool     // stdout must equal the golden file
		contains []string // else stdout must contain these
		lacks    []string // and must not contain these
		wantErr  string   // kubectl must fail with this on stderr
	}{
		{name: "get-po", args: []string{"get", "po"}, golden: true},
		{name: "get-po-A", args: []string{"get", "po", "-A"}, golden: true},
		{name: "get-po-n-other", args: []string{"get", "po", "-n", "other"}, golden: true},
		{name: "get-po-wide", args: []string{"get", "po", "-A", "-o", "wide"}, golden: true},
		{name: "get-po-yaml", args: []string{"get", "po", "web", "-o", "yaml"}, golden: true},
		{name: "get-po-json", args: []string{"get", "po", "crash", "-o", "json"}, golden: true},
		{name: "get-po-name", args: []string{"get", "po", "-A", "-o", "name"}, golden: true},
		{name: "get-po-one", args: []string{"get", "po", "crash"}, golden: true},
		{name: "get-po-show-labels", args: []string{"get", "po", "--show-labels"}, golden: true},
		{name: "get-po-L", args: []string{"get", "po", "-A", "-L", "app,tier"}, golden: true},
		{name: "sel-eq", args: []string{"get", "po", "-A", "-o", "name", "-l", "tier=front"}, contains: []string{"pod/term\npod/web\n"}},
		{name: "sel-ne", args: []string{"get", "po", "-A", "-o", "name", "-l", "tier!=front"}, contains: []string{"pod/crash\npod/done\npod/initwait\npod/pending\npod/pullerr\n"}},
		{name: "sel-exists", args: []string{"get", "po", "-A", "-o", "name", "-l", "tier"}, contains: []string{"pod/crash\npod/term\npod/web\npod/pullerr\n"}},
		{name: "sel-not-exists", args: []string{"get", "po", "-A", "-o", "name", "-l", "!tier"}, contains: []string{"pod/done\npod/initwait\npod/pending\n"}},
		{name: "sel-in", args: []string{"get", "po", "-A", "-o", "name", "-l", "app in (web,crash)"}, contains: []string{"pod/crash\npod/term\npod/web\n"}},
		{name: "sel-notin", args: []string{"get", "po", "-A", "-o", "name", "-l", "app notin (web,crash)"}, contains: []string{"pod/done\npod/initwait\npod/pending\npod/pullerr\n"}},
		{name: "sel-joined", args: []string{"get", "po", "-A", "-o", "name", "-l", "tier=back,app!=crash"}, contains: []string{"pod/pullerr\n"}},
		{name: "field-phase", args: []string{"get", "po", "-A", "-o", "name", "--field-selector", "status.phase=Running"}, contains: []string{"pod/crash\npod/term\npod/web\n"}},
		{name: "field-name", args: []string{"get", "po", "-A", "-o", "name", "--field-selector", "metadata.name=pullerr"}, contains: []string{"pod/pullerr\n"}},
		{name: "field-namespace", args: []string{"get", "po", "-A", "-o", "name", "--field-selector", "metadata.namespace=other"}, contains: []string{"pod/pending\npod/pullerr\n"}},
		{name: "field-node", args: []string{"get", "po", "-A", "-o", "name", "--field-selector", "spec.nodeName="}, contains: []string{"pod/pending\n"}},
		{name: "field-restart", args: []string{"get", "po", "-A", "-o", "name", "--field-selector", "spec.restartPolicy=Never"}, contains: []string{"pod/done\n"}},
		{name: "field-ip", args: []string{"get", "po", "-A", "-o", "name", "--field-selector", "status.podIP=10.88.0.5"}, contains: []string{"pod/web\n"}},
		{name: "get-ns", args: []string{"get", "ns"}, golden: true},
		{name: "get-nodes", args: []string{"get", "nodes"}, golden: true},
		{name: "get-no-wide", args: []string{"get", "no", "-o", "wide"}, golden: true},
		{name: "get-events", args: []string{"get", "events"}, golden: true},
		{name: "get-events-A", args: []string{"get", "events", "-A"}, golden: true},
		{name: "get-events-field", args: []string{"get", "events", "--field-selector", "involvedObject.name=crash"}, golden: true},
		{name: "get-all", args: []string{"get", "all", "-A"}, golden: true},
		{name: "api-resources", args: []string{"api-resources"}, golden: true},
		{name: "version", args: []string{"version"}, contains: []string{"Server Version: v1.37.2"}},
		{name: "describe-po", args: []string{"describe", "po", "crash"}, contains: []string{
			"Name:         crash", "Namespace:    default", "Node:         board-1/", "Status:       Running", "IP:           10.88.0.6",
			"      Reason:       CrashLoopBackOff", "    Restart Count:  3",
			"Events:\n", "Warning  BackOff", "(x3 over", "kubelet  Back-off restarting failed container app in pod crash_default(uid-crash)",
		}},
		{name: "describe-node", args: []string{"describe", "node", "board-1"}, contains: []string{
			"Name:               board-1", "Roles:              edge", "InternalIP:  10.0.2.15", "Kubelet Version:            v1.37.2",
			"Non-terminated Pods:          (5 in total)", "Normal  Starting", "kubelet  Starting kubelet.",
			// The node's lease, as kubectl shows a cluster node's.
			"Lease:\n  HolderIdentity:  board-1\n  AcquireTime:     <unset>\n  RenewTime:       Sat, 01 Mar 2025 11:59:53 +0000\n",
		}, lacks: []string{"Failed to get lease"}},
		{name: "get-leases", args: []string{"get", "leases", "-n", "kube-node-lease"}, golden: true},
		{name: "get-lease-yaml", args: []string{"get", "lease", "board-1", "-n", "kube-node-lease", "-o", "yaml"}, golden: true},
		{name: "logs", args: []string{"logs", "web"}, contains: []string{"web/nginx line 1\nweb/nginx line 2\nweb/nginx line 3\n"}},
		{name: "logs-c", args: []string{"logs", "web", "-c", "sidecar"}, contains: []string{"web/sidecar line 1\n"}},
		{name: "logs-tail-ts", args: []string{"logs", "web", "-c", "nginx", "--tail", "1", "--timestamps"}, contains: []string{"2025-03-01T12:00:00Z web/nginx line 3\n"}},
		{name: "logs-previous", args: []string{"logs", "crash", "--previous"}, contains: []string{"previous run of app\n"}},
		{name: "logs-follow", args: []string{"logs", "-f", "crash"}, contains: []string{"crash/app line 3\nfollowed\n"}},
		{name: "logs-waiting", args: []string{"logs", "-n", "other", "pending"}, wantErr: `Error from server (BadRequest): container "app" in pod "pending" is waiting to start: ContainerCreating`},
		{name: "get-missing", args: []string{"get", "po", "nope"}, wantErr: `Error from server (NotFound): pods "nope" not found`},
		{name: "bad-label-selector", args: []string{"get", "po", "-l", "a b"}, wantErr: `Error from server (BadRequest):`},
		{name: "bad-field-selector", args: []string{"get", "po", "--field-selector", "foo=bar"}, wantErr: `field label not supported: foo`},
		{name: "delete", args: []string{"delete", "po", "web"}, wantErr: `Error from server (MethodNotAllowed): DELETE on pods is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := k.run(tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(errOut, tt.wantErr) {
					t.Fatalf("kubectl %v: err %v, stderr %q; want failure with %q", tt.args, err, errOut, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("kubectl %v: %v\nstdout:\n%s\nstderr:\n%s", tt.args, err, out, errOut)
			}
			if tt.golden {
				checkGolden(t, filepath.Join("testdata", "kubectl", tt.name+".golden"), out)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Errorf("kubectl %v: output lacks %q:\n%s", tt.args, want, out)
				}
			}
			for _, unwanted := range tt.lacks {
				if strings.Contains(out, unwanted) {
					t.Errorf("kubectl %v: output has %q:\n%s", tt.args, unwanted, out)
				}
			}
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", path, diff)
	}
}

// lines streams a command's stdout line by line.
func lines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 100)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// waitFor reads lines until one contains want, within a deadline.
func waitFor(t *testing.T, ch <-chan string, want string) []string {
	t.Helper()
	var seen []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("kubectl ended before printing %q; it printed:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, want) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no line with %q within 20s; kubectl printed:\n%s", want, strings.Join(seen, "\n"))
		}
	}
}

// waitWatchers polls until n watches are open on st, within a deadline.
func waitWatchers(t *testing.T, st *store.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for st.Watchers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d watches open after 20s, want %d", st.Watchers(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKubectlWatch(t *testing.T) {
	srv, st := newTestServer(t)
	k := newKubectl(t, srv.URL)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	table := lines(t, k.command(ctx, "get", "po", "-w"))
	jsonCmd := k.command(ctx, "get", "po", "crash", "-w", "-o", "json")
	jsonLines := lines(t, jsonCmd)

	// The initial list, then nothing until a change.
	got := waitFor(t, table, "web ")
	if !strings.HasPrefix(got[0], "NAME ") {
		t.Errorf("first line %q is not the header", got[0])
	}
	waitFor(t, jsonLines, `"name": "crash"`)
	// kubectl watches a named object from resourceVersion 0 and skips the
	// first event (the object as it is): change it only once both watch.
	waitWatchers(t, st, 2)

	obj, _ := st.Get("Pod", "default", "crash")
	crash := obj.(*corev1.Pod)
	crash.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(0)}}
	crash.Status.ContainerStatuses[0].Ready = true
	crash.Status.ContainerStatuses[0].RestartCount = 4
	if err := st.Put(crash); err != nil {
		t.Fatal(err)
	}
	line := waitFor(t, table, "crash ")
	if l := line[len(line)-1]; !regexp.MustCompile(`^crash\s+1/1\s+Running\s+4 \(45s ago\)\s+5m$`).MatchString(l) {
		t.Errorf("watch line for the updated pod = %q, want crash 1/1 Running 4 (45s ago) 5m", l)
	}
	waitFor(t, jsonLines, `"restartCount": 4`)

	if err := st.Delete("Pod", "default", "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, table, "web ")
}
