package streaming_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/runtime"
	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/integration"
	"github.com/podboot/podboot/internal/testenv"
)

const kubectlPath = "/usr/bin/kubectl"

// board is the API over a real containerd with one pod, "web", of two
// busybox containers, and the real kubectl pointed at it.
//
//   - main serves two httpd's in the pod's network namespace: port 8080
//     (named "http") answers "eighty-eighty", port 8081 "eighty-eighty-one";
//   - side sleeps, with WHO=side in its environment, and prints "tick"
//     every 200 ms (for attach).
type board struct {
	t     *testing.T
	ctx   context.Context
	rt    *ctrdruntime.Runtime
	st    *store.Store
	srv   *httptest.Server
	dir   string
	pod   *corev1.Pod
	ids   map[string]string // container name → runtime ID
	image runtime.Image
	sb    runtime.Sandbox
	// env is added to kubectl's environment (the protocol switches).
	env []string
}

// protocols are the wire protocols kubectl 1.32 can be made to speak:
// WebSocket (its default: v5.channel.k8s.io for exec, attach and cp, SPDY
// tunnelled through a WebSocket for port-forward) and SPDY (the older
// clients', and kubectl's fallback).
var protocols = []struct {
	name string
	env  []string
}{
	{"websocket", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true", "KUBECTL_PORT_FORWARD_WEBSOCKETS=true"}},
	{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
}

func newBoard(t *testing.T) *board {
	t.Helper()
	if _, err := os.Stat(kubectlPath); err != nil {
		integration.Unavailable(t, "kubectl tests need %s (kubectl v1.32): %v", kubectlPath, err)
	}
	env := testenv.Containerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	rt, err := ctrdruntime.New(ctx, ctrdruntime.Config{Address: env.Address(), StateDir: env.StateDir, RuncPath: env.RuncPath, RuncRoot: env.RuncRoot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	if _, err := rt.ImportArchive(ctx, testenv.Image(t, "busybox:latest")); err != nil {
		t.Fatal(err)
	}
	img, err := rt.EnsureImage(ctx, "busybox:latest", corev1.PullNever)
	if err != nil {
		t.Fatal(err)
	}
	b := &board{t: t, ctx: ctx, rt: rt, st: store.New(time.Now), dir: t.TempDir(), ids: map[string]string{}, image: img}
	b.pod = &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: types.UID("uid-web")},
		Spec: corev1.PodSpec{
			NodeName: "board",
			Containers: []corev1.Container{
				{
					Name: "main", Image: "busybox:latest",
					Command: []string{"sh", "-c", "mkdir -p /www/a /www/b && echo eighty-eighty > /www/a/index.html && echo eighty-eighty-one > /www/b/index.html && " +
						"httpd -p 8081 -h /www/b && exec httpd -f -p 8080 -h /www/a"},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "other", ContainerPort: 8081}},
				},
				{
					Name: "side", Image: "busybox:latest",
					Command: []string{"sh", "-c", "while true; do echo tick; sleep 0.2; done"},
					Env:     []corev1.EnvVar{{Name: "WHO", Value: "side"}},
				},
			},
		},
	}
	ref := runtime.PodRef{UID: b.pod.UID, Namespace: b.pod.Namespace, Name: b.pod.Name}
	b.sb, err = rt.RunSandbox(ctx, runtime.SandboxConfig{Pod: ref, Hostname: b.pod.Name})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.pod.Spec.Containers {
		b.startContainer(c)
	}
	b.publish()
	t.Cleanup(func() {
		// Stop and remove what the test left, before containerd goes.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, _ := rt.ListContainers(cctx)
		for _, c := range list {
			_ = rt.StopContainer(cctx, c.ID, 0)
			_ = rt.RemoveContainer(cctx, c.ID)
		}
		_ = rt.RemoveSandbox(cctx, ref)
	})
	b.srv = httptest.NewServer(api.New(b.st, nil, api.Options{NodeName: "board", GitVersion: "v1.37.2", Streams: rt}))
	t.Cleanup(b.srv.Close)
	b.waitHTTP()
	return b
}

func (b *board) startContainer(c corev1.Container) {
	b.t.Helper()
	c.Image = b.image.Ref
	ref := runtime.PodRef{UID: b.pod.UID, Namespace: b.pod.Namespace, Name: b.pod.Name}
	st, err := b.rt.StartContainer(b.ctx, runtime.ContainerConfig{
		Pod: ref, Sandbox: b.sb, Spec: c, Image: b.image,
		LogDir:                 filepath.Join(b.dir, "logs", c.Name),
		TerminationGracePeriod: time.Second,
	})
	if err != nil {
		b.t.Fatalf("start container %s: %v", c.Name, err)
	}
	b.ids[c.Name] = st.ID
}

// publish puts the pod in the store with its containers running, as the
// reconcile loop reports them.
func (b *board) publish() {
	b.t.Helper()
	pod := b.pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ContainerID: "containerd://" + b.ids[c.Name], Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		})
	}
	if err := b.st.Put(pod); err != nil {
		b.t.Fatal(err)
	}
}

// waitHTTP waits until main's httpd's answer inside the pod.
func (b *board) waitHTTP() {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, err := b.kubectl(nil, "exec", "web", "-c", "main", "--", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
		if err == nil && strings.Contains(out, "eighty-eighty") {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("httpd in the pod never answered: %v %q", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *board) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--server", b.srv.URL, "--cache-dir", filepath.Join(b.dir, "cache"), "--namespace", "default"}, args...)
	cmd := exec.CommandContext(ctx, kubectlPath, full...)
	cmd.Env = append([]string{"HOME=" + b.dir, "KUBECONFIG=" + filepath.Join(b.dir, "kubeconfig"), "PATH=/usr/bin:/bin"}, b.env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// kubectl runs kubectl with stdin and returns its stdout, stderr and
// error (an *exec.ExitError carries its exit code).
func (b *board) kubectl(stdin io.Reader, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := b.command(ctx, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func (b *board) ok(t testing.TB, stdin io.Reader, args ...string) string {
	t.Helper()
	out, errOut, err := b.kubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, errOut)
	}
	return out
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// portForward is a running kubectl port-forward.
type portForward struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	// local maps each remote port to its local address.
	local  map[string]string
	stderr *syncBuffer
	done   chan struct{} // closed when kubectl has exited
	err    error         // kubectl's exit, once done
}

var forwardingRE = regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> (\d+)$`)

// portForward starts kubectl port-forward with ports and waits until it
// forwards each of them (on 127.0.0.1).
func (b *board) portForward(t testing.TB, ports ...string) *portForward {
	t.Helper()
	ctx, cancel := context.WithCancel(b.ctx)
	args := append([]string{"port-forward", "--address", "127.0.0.1", "pod/web"}, ports...)
	cmd := b.command(ctx, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pf := &portForward{cmd: cmd, cancel: cancel, local: map[string]string{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = pf.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(20 * time.Second)
	for len(pf.local) < len(ports) {
		select {
		case line, ok := <-lines:
			if !ok {
				cancel()
				t.Fatalf("kubectl port-forward %q ended before forwarding: %v\n%s", ports, cmd.Wait(), pf.stderr)
			}
			if m := forwardingRE.FindStringSubmatch(line); m != nil {
				pf.local[m[2]] = m[1]
			}
		case <-timeout:
			cancel()
			t.Fatalf("kubectl port-forward %q did not forward in time; stderr:\n%s", ports, pf.stderr)
		}
	}
	go func() {
		for range lines { // "Handling connection for ..."
		}
		pf.err = cmd.Wait()
		close(pf.done)
	}()
	return pf
}

// stop interrupts kubectl port-forward and waits for it.
func (pf *portForward) stop() {
	pf.cancel()
	<-pf.done
}

// get fetches http://addr/ through the forward.
func get(addr string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET http://%s/: %s", addr, resp.Status)
	}
	return string(body), nil
}

func itoa(n int) string { return fmt.Sprint(n) }

// shellJoin quotes args for sh -c.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
