package imagebuild_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// container is a stand-in image run as a container runs it, without
// containerd: its filesystem unpacked into a directory, its entrypoint and
// cmd (or the test's args, as a pod's args replace cmd) as PID 1 of new
// PID and mount namespaces chrooted there, with /proc and a /dev of its
// own, in a network namespace of the test's. What is checked is the
// image: its files, its config and its programs.
type container struct {
	t    *testing.T
	ns   *testenv.NetNS
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // the process's end, once done is closed
}

// runStandIn runs the host's stand-in tagged tag with args (none: the
// image's cmd) and env added to the image's until the test ends.
func runStandIn(t *testing.T, tag string, env []string, args ...string) *container {
	t.Helper()
	testenv.RequireRoot(t)
	var spec *imagebuild.Spec
	for _, s := range testenv.StandIns(t) {
		for _, st := range s.Tags {
			if st == tag {
				spec = &s
			}
		}
	}
	if spec == nil {
		t.Fatalf("no stand-in is tagged %q", tag)
	}
	img, err := imagebuild.Build(*spec)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	unpack(t, mutate.Extract(img), root)

	argv := append([]string{}, cf.Config.Entrypoint...)
	if len(args) > 0 {
		argv = append(argv, args...)
	} else {
		argv = append(argv, cf.Config.Cmd...)
	}
	// A container's /proc (busybox's killall and pidof read it) and /dev.
	setup := "mount -t proc proc /proc && mount -t tmpfs -o mode=755 dev /dev && " +
		"mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/zero c 1 5 && mknod -m 666 /dev/urandom c 1 9 && " +
		`exec "$@"`
	c := &container{t: t, ns: testenv.NewNetNS(t), out: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command("/bin/busybox", append([]string{"sh", "-c", setup, "sh"}, argv...)...)
	c.cmd.Env = append(append([]string{}, cf.Config.Env...), env...)
	c.cmd.Dir = cf.Config.WorkingDir
	if c.cmd.Dir == "" {
		c.cmd.Dir = "/"
	}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:       root,
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS, // and / made private, so nothing mounted leaks out
	}
	// /bin/busybox is the chroot's: the host's path names it there too.
	if err := c.ns.Do(c.cmd.Start); err != nil {
		t.Fatalf("start %s %q: %v", tag, argv, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill() // PID 1: its namespace goes with it
		<-c.done
		if t.Failed() {
			t.Logf("%s output:\n%s", tag, c.out.String())
		}
	})
	return c
}

// exec runs argv in the container, as containerd's exec does (its
// namespaces, root and working directory), and returns the combined output.
func (c *container) exec(ctx context.Context, argv ...string) (string, error) {
	args := append([]string{"nsenter", "-t", fmt.Sprint(c.cmd.Process.Pid), "-m", "-p", "-n", "-r", "-w", "--"}, argv...)
	out, err := exec.CommandContext(ctx, "/bin/busybox", args...).CombinedOutput()
	return string(out), err
}

// wait waits up to d for PID 1 to exit and returns its exit code.
func (c *container) wait(d time.Duration) (int, bool) {
	select {
	case <-c.done:
		var ee *exec.ExitError
		if errors.As(c.err, &ee) {
			return ee.ExitCode(), true
		}
		if c.err != nil {
			c.t.Fatalf("wait: %v", c.err)
		}
		return 0, true
	case <-time.After(d):
		return 0, false
	}
}

// client is an HTTP client from the container's network namespace.
func (c *container) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: c.ns.DialContext, DisableKeepAlives: true}}
}

// get answers GET url from the namespace, retrying until the server
// listens (10 s).
func (c *container) get(url string, header http.Header) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header = header
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.client().Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dial connects to addr in the namespace, retrying until it listens (10 s).
func (c *container) dial(addr string) net.Conn {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := c.ns.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The docs' exec-liveness.yaml: sh, touch, sleep, rm in the container and
// the probe's cat through exec.
func TestIntegrationStandInBusyboxExecLiveness(t *testing.T) {
	t.Parallel()
	c := runStandIn(t, "registry.k8s.io/busybox:1.27.2", nil,
		"/bin/sh", "-c", "touch /tmp/healthy; sleep 2; rm -f /tmp/healthy; sleep 600")
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.exec(ctx, "cat", "/tmp/healthy"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cat /tmp/healthy never succeeded")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err := c.exec(ctx, "cat", "/tmp/healthy")
		if err != nil {
			if !strings.Contains(out, "/tmp/healthy") {
				t.Errorf("failing cat says %q, want it to name the file", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cat /tmp/healthy still succeeds 10 s after the rm")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, ok := c.wait(0); ok {
		t.Errorf("the container exited (%d), want it sleeping", code)
	}
}

// The docs' http-liveness.yaml: agnhost liveness answers 200 for 10 s,
// then 500.
func TestIntegrationStandInAgnhostLiveness(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := runStandIn(t, "registry.k8s.io/e2e-test-images/agnhost:2.40", nil, "liveness")
	header := http.Header{"Custom-Header": {"Awesome"}}
	if code, body := c.get("http://127.0.0.1:8080/healthz", header); code != 200 || body != "ok" {
		t.Fatalf("GET /healthz at start = %d %q, want 200 ok", code, body)
	}
	if code, body := c.get("http://127.0.0.1:8080/started", nil); code != 200 || body == "" {
		t.Errorf("GET /started = %d %q, want 200 and a duration", code, body)
	}
	for {
		code, body := c.get("http://127.0.0.1:8080/healthz", header)
		if code == 500 {
			if since := time.Since(start); since < 10*time.Second {
				t.Errorf("500 after %v, want after 10 s", since)
			}
			if !strings.HasPrefix(body, "error: 1") {
				t.Errorf("500's body %q, want error: <seconds>", body)
			}
			break
		}
		if code != 200 || time.Since(start) > 15*time.Second {
			t.Fatalf("GET /healthz after %v = %d %q, want 200 until 10 s, then 500", time.Since(start), code, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// The docs' tcp-liveness-readiness.yaml: goproxy listens on 8080 (the
// probes connect) and is a forward proxy.
func TestIntegrationStandInGoproxy(t *testing.T) {
	t.Parallel()
	c := runStandIn(t, "registry.k8s.io/goproxy:0.1", nil)
	c.dial("127.0.0.1:8080").Close()

	// An origin server in the same network namespace.
	var ln net.Listener
	if err := c.ns.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	origin := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.URL.Path)
	})}}
	origin.Start()
	defer origin.Close()
	proxyURL, _ := url.Parse("http://127.0.0.1:8080")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DialContext: c.ns.DialContext}}
	resp, err := client.Get(origin.URL + "/through")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "origin /through" {
		t.Errorf("GET through the proxy = %d %q, want 200 %q", resp.StatusCode, b, "origin /through")
	}
	if code, body := c.get("http://127.0.0.1:8080/", nil); code != 500 || !strings.Contains(body, "This is a proxy server") {
		t.Errorf("GET the proxy itself = %d %q, want goproxy's 500", code, body)
	}
}

// The docs' grpc-liveness.yaml: etcd with the example's command serves
// grpc.health.v1 on 2379, SERVING; PODBOOT_GRPC_HEALTH makes it fail.
func TestIntegrationStandInEtcd(t *testing.T) {
	t.Parallel()
	command := []string{"/usr/local/bin/etcd", "--data-dir", "/var/lib/etcd", "--listen-client-urls", "http://0.0.0.0:2379",
		"--advertise-client-urls", "http://127.0.0.1:2379", "--log-level", "debug"}
	tests := []struct {
		name string
		env  []string
		want healthpb.HealthCheckResponse_ServingStatus
	}{
		{"default", nil, healthpb.HealthCheckResponse_SERVING},
		{"not serving", []string{"PODBOOT_GRPC_HEALTH=NOT_SERVING"}, healthpb.HealthCheckResponse_NOT_SERVING},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The image has no entrypoint: the command is the args here.
			c := runStandIn(t, "registry.k8s.io/etcd:3.5.1-0", tt.env, command...)
			c.dial("127.0.0.1:2379").Close()
			conn, err := grpc.NewClient("127.0.0.1:2379", grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
					return c.ns.DialContext(ctx, "tcp", addr)
				}))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil || resp.GetStatus() != tt.want {
				t.Errorf("Check() = %v, %v; want %v", resp.GetStatus(), err, tt.want)
			}
			if out, err := c.exec(ctx, "ls", "-d", "/var/lib/etcd"); err != nil {
				t.Errorf("no data dir: %v: %s", err, out)
			}
			// etcd as PID 1 stops on SIGTERM and exits 0.
			c.cmd.Process.Signal(syscall.SIGTERM)
			if code, ok := c.wait(5 * time.Second); !ok || code != 0 {
				t.Errorf("after SIGTERM: exited %v with %d, want exit 0", ok, code)
			}
		})
	}
}

// The docs' pod-with-http-healthcheck.yaml and lifecycle-events.yaml:
// nginx on 80 answers 404 for /_status/healthz as nginx does; the postStart
// writes /usr/share/message with /bin/sh; the preStop's `nginx -s quit;
// while killall -0 nginx; do sleep 1; done` ends because the master quits
// (exit 0), as real nginx's does.
func TestIntegrationStandInNginx(t *testing.T) {
	t.Parallel()
	c := runStandIn(t, "nginx:latest", nil)
	if code, body := c.get("http://127.0.0.1:80/", nil); code != 200 || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("GET / = %d %q, want nginx's welcome page", code, body)
	}
	if code, _ := c.get("http://127.0.0.1:80/_status/healthz", nil); code != 404 {
		t.Errorf("GET /_status/healthz = %d, want 404 as nginx", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := c.exec(ctx, "/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"); err != nil {
		t.Fatalf("postStart: %v: %s", err, out)
	}
	if out, err := c.exec(ctx, "cat", "/usr/share/message"); err != nil || out != "Hello from the postStart handler\n" {
		t.Errorf("cat /usr/share/message = %q, %v", out, err)
	}
	if out, err := c.exec(ctx, "killall", "-0", "nginx"); err != nil {
		t.Fatalf("killall -0 nginx while it runs: %v: %s", err, out)
	}
	preStop := make(chan error, 1)
	go func() {
		_, err := c.exec(ctx, "/bin/sh", "-c", "nginx -s quit; while killall -0 nginx; do sleep 1; done")
		preStop <- err
	}()
	if code, ok := c.wait(10 * time.Second); !ok || code != 0 {
		t.Errorf("after nginx -s quit: exited %v with %d, want the master to quit with 0", ok, code)
	}
	select {
	case <-preStop: // ended, whether by its loop or with the container
	case <-time.After(10 * time.Second):
		t.Errorf("the preStop still runs 10 s after nginx quit")
	}
}

// The docs' pod-with-tcp-socket-healthcheck.yaml: redis listens on 6379,
// through any number of probes' connect-and-close, and answers PING.
func TestIntegrationStandInRedis(t *testing.T) {
	t.Parallel()
	c := runStandIn(t, "redis:latest", nil)
	for range 3 {
		c.dial("127.0.0.1:6379").Close()
	}
	conn := c.dial("127.0.0.1:6379")
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "+PONG" {
		t.Errorf("PING = %q, %v; want +PONG", line, err)
	}
}

// unpack writes a flattened image filesystem (a tar) under root.
func unpack(t *testing.T, rc io.ReadCloser, root string) {
	t.Helper()
	defer rc.Close()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
			if err == nil {
				err = os.Chmod(p, mode&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var b bytes.Buffer
			if _, err = io.Copy(&b, tr); err == nil {
				err = os.WriteFile(p, b.Bytes(), mode.Perm())
			}
		default:
			err = fmt.Errorf("unsupported entry type %c", h.Typeflag)
		}
		if err != nil {
			t.Fatalf("unpack %s: %v", h.Name, err)
		}
	}
}

// syncBuffer is a bytes.Buffer for a process's output read while it runs.
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
