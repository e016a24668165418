package nodetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/internal/testenv"
)

// node is a whole podboot node on this host: bin/devnode (a private
// containerd and podagent) on a temporary flash directory.
type node struct {
	t      *testing.T
	flash  string
	state  string
	url    string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	kube   string         // kubectl cache dir
	netns  *testenv.NetNS // nil: the host's network namespace
	http   *http.Client   // reaches the API from inside netns
	// release frees the thread devnode was started from: its Pdeathsig
	// powers the node off if the test binary dies.
	release func()
}

// nodeOptions are how a node differs from the default one: loopback-only
// pods in the host's network namespace.
type nodeOptions struct {
	// netns runs devnode (containerd, the agent, its API) in a network
	// namespace the test made; the test reaches the API from inside it.
	netns *testenv.NetNS
	// podNetwork turns the agent's pod network on with bin/cni's plugins;
	// it needs netns, the host's network is never touched.
	podNetwork bool
	resolvConf string // the agent's --resolv-conf
}

func repoRoot(t testing.TB) string {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// requireNode skips (or fails under PODBOOT_INTEGRATION=1) unless this test
// can run a real node: root and the binaries of `make build`.
func requireNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin")
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, b := range []string{"devnode", "podagent", "mkimage", "containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			missing = append(missing, "bin/"+b)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox (apt-get install busybox-static)")
	}
	if len(missing) > 0 {
		testenv.Unavailable(t, "needs %s: run `make build` and the tests as root", strings.Join(missing, ", "))
	}
	return bin
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode builds the stand-in images into flash/images and starts devnode;
// setup runs on the flash directory before the node boots.
func startNode(t *testing.T, setup ...func(flash string)) *node {
	return startNodeWith(t, nodeOptions{}, setup...)
}

// startNodeWith is startNode with opts.
func startNodeWith(t *testing.T, opts nodeOptions, setup ...func(flash string)) *node {
	bin := requireNode(t)
	if opts.podNetwork {
		if opts.netns == nil {
			t.Fatal("a node with the pod network must run in a network namespace of the test's")
		}
		for _, p := range []string{"cni/bridge", "cni/host-local"} {
			if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
				testenv.Unavailable(t, "needs bin/%s: run `make build`", p)
			}
		}
	}
	base, err := os.MkdirTemp("", "pbn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	n := &node{t: t, flash: filepath.Join(base, "flash"), state: filepath.Join(base, "s"), kube: filepath.Join(base, "kube"),
		netns: opts.netns, http: http.DefaultClient}
	if n.netns != nil {
		n.http = &http.Client{Transport: &http.Transport{DialContext: n.netns.DialContext}}
	}
	for _, d := range []string{filepath.Join(n.flash, "pods"), filepath.Join(n.flash, "images")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk := exec.Command(filepath.Join(bin, "mkimage"), "-arch", runtimeArch(), "-busybox", "/bin/busybox", "-o", filepath.Join(n.flash, "images"))
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, out)
	}
	for _, f := range setup {
		f(n.flash)
	}
	port := freePort(t)
	n.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"--flash", n.flash, "--state", n.state, "--listen", fmt.Sprintf("127.0.0.1:%d", port)}
	if opts.podNetwork {
		args = append(args, "--cni-bin-dir", filepath.Join(bin, "cni"))
	}
	if opts.resolvConf != "" {
		args = append(args, "--resolv-conf", opts.resolvConf)
	}
	n.cmd = n.command(context.Background(), filepath.Join(bin, "devnode"), args...)
	n.stderr = &lockedBuffer{}
	n.cmd.Stderr = n.stderr
	// A test binary killed from outside (a timeout, ^C) powers the node
	// off rather than leave its containerd, shims and mounts behind.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	release, err := nsutil.StartOnKeptThread(n.cmd)
	if err != nil {
		t.Fatalf("start devnode: %v", err)
	}
	n.release = release
	t.Cleanup(n.stop)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("devnode exited before printing ready")
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%v\n%s", err, n.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("devnode not ready after 60s\n%s", n.stderr)
	}
	return n
}

func (n *node) stop() {
	defer n.release()
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			n.t.Errorf("devnode power-off: %v\n%s", err, n.stderr)
		}
	case <-time.After(2 * time.Minute):
		_ = n.cmd.Process.Kill()
		n.t.Errorf("devnode did not power off within 2 minutes\n%s", n.stderr)
	}
}

// writeManifest writes a manifest atomically, as an editor's save would.
func (n *node) writeManifest(name, content string) {
	n.t.Helper()
	tmp := filepath.Join(n.flash, "pods", "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(n.flash, "pods", name)); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) removeManifest(name string) {
	n.t.Helper()
	if err := os.Remove(filepath.Join(n.flash, "pods", name)); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"--server", n.url, "--cache-dir", n.kube}, args...)
	out, err := n.command(ctx, "kubectl", full...).CombinedOutput()
	return string(out), err
}

// command runs name in the node's network namespace: nsenter enters it
// and execs name, so the process is name's own (signals reach it).
func (n *node) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if n.netns == nil {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.netns.Path, name}, args...)...)
}

func (n *node) mustKubectl(args ...string) string {
	n.t.Helper()
	out, err := n.kubectl(args...)
	if err != nil {
		n.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (n *node) getPod(ns, name string) (*corev1.Pod, bool) {
	resp, err := n.http.Get(fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s", n.url, ns, name))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false
	}
	var p corev1.Pod
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return nil, false
	}
	return &p, true
}

// waitPod polls the default namespace's pod until cond holds; what is
// being waited for is a behaviour (a state is reached), so the bound is
// generous.
func (n *node) waitPod(name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	n.t.Helper()
	return n.waitPodIn(n.t, "default", name, timeout, what, cond)
}

// waitPodIn is waitPod for any namespace, failing t (a subtest's).
func (n *node) waitPodIn(t testing.TB, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		if p, ok := n.getPod(ns, name); ok {
			last = p
			if cond(p) {
				return p
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	js, _ := json.MarshalIndent(last, "", "  ")
	t.Fatalf("pod %s/%s: %s not reached within %v; last seen:\n%s\nagent log:\n%s", ns, name, what, timeout, js, tail(n.stderr.String(), 60))
	return nil
}

func (n *node) waitGone(name string, timeout time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, ok := n.getPod("default", name); !ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.t.Fatalf("pod %s still present after %v", name, timeout)
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.InitContainerStatuses {
		if p.Status.InitContainerStatuses[i].Name == name {
			return &p.Status.InitContainerStatuses[i]
		}
	}
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil {
			return false
		}
	}
	return true
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// procsOf lists the PIDs whose command line contains all of substrs.
func procsOf(substrs ...string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		ok := true
		for _, s := range substrs {
			if !strings.Contains(cmd, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, pid)
		}
	}
	return out
}

// lockedBuffer collects devnode's log while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runtimeArch() string { return goruntime.GOARCH }
