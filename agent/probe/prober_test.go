package probe_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podboot/podboot/agent/probe"
)

// outcome is what one Probe call returned, in a form cmp can compare.
type outcome struct {
	Result probe.Result
	Output string
	Err    string
}

func newOutcome(r probe.Result, out string, err error) outcome {
	o := outcome{Result: r, Output: out}
	if err != nil {
		o.Err = err.Error()
	}
	return o
}

func testPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "1234"}}
}

func TestResolvePort(t *testing.T) {
	c := &corev1.Container{Name: "c", Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 8080},
		{Name: "zero", ContainerPort: 0},
	}}
	tests := []struct {
		name    string
		port    intstr.IntOrString
		c       *corev1.Container
		want    int
		wantErr string
	}{
		{name: "number", port: intstr.FromInt32(80), c: c, want: 80},
		{name: "name", port: intstr.FromString("http"), c: c, want: 8080},
		{name: "unknown name", port: intstr.FromString("grpc"), c: c, want: 0, wantErr: `port "grpc" not found`},
		{name: "name without container", port: intstr.FromString("http"), want: 0, wantErr: `port "http" not found`},
		{name: "zero", port: intstr.FromInt32(0), c: c, want: 0, wantErr: "invalid port number: 0"},
		{name: "named zero", port: intstr.FromString("zero"), c: c, want: 0, wantErr: "invalid port number: 0"},
		{name: "too big", port: intstr.FromInt32(65536), c: c, want: 65536, wantErr: "invalid port number: 65536"},
		{name: "largest", port: intstr.FromInt32(65535), c: c, want: 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := probe.ResolvePort(tt.port, tt.c)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff([]any{tt.want, tt.wantErr}, []any{got, gotErr}); diff != "" {
				t.Errorf("ResolvePort (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUserAgent(t *testing.T) {
	tests := []struct{ purpose, version, want string }{
		{"probe", "v1.37.2", "kube-probe/1.37"},
		{"lifecycle", "v1.37.2", "kube-lifecycle/1.37"},
		{"probe", "1.30.0-rc.1", "kube-probe/1.30"},
	}
	for _, tt := range tests {
		if got := probe.UserAgent(tt.purpose, tt.version); got != tt.want {
			t.Errorf("UserAgent(%q, %q) = %q, want %q", tt.purpose, tt.version, got, tt.want)
		}
	}
}

func TestFormatPod(t *testing.T) {
	if diff := cmp.Diff([]string{"web_default(1234)", "<nil>"}, []string{probe.FormatPod(testPod()), probe.FormatPod(nil)}); diff != "" {
		t.Errorf("FormatPod (-want +got):\n%s", diff)
	}
}

func TestProbeMissingHandler(t *testing.T) {
	p := &probe.Prober{}
	target := probe.Target{Pod: testPod(), Container: &corev1.Container{Name: "app"}}
	want := outcome{Result: probe.Unknown, Err: "missing probe handler for web_default(1234):app"}
	for _, h := range []*corev1.ProbeHandler{nil, {}} {
		if diff := cmp.Diff(want, newOutcome(p.Probe(t.Context(), h, target, 0))); diff != "" {
			t.Errorf("Probe(%v) (-want +got):\n%s", h, diff)
		}
	}
}

// connTracker is a DialFunc that dials every address at to (or as asked
// when to is ""), remembers what was asked, and tells whether every
// connection it made was closed: a probe must leave no fd behind.
type connTracker struct {
	to string

	mu    sync.Mutex
	addrs []string
	conns []*trackedConn
}

type trackedConn struct {
	net.Conn
	mu     sync.Mutex
	closed bool
}

func (c *trackedConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

func (d *connTracker) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, network+" "+addr)
	d.mu.Unlock()
	to := addr
	if d.to != "" {
		to = d.to
	}
	conn, err := probe.DefaultDial(ctx, network, to)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: conn}
	d.mu.Lock()
	d.conns = append(d.conns, tc)
	d.mu.Unlock()
	return tc, nil
}

// dialed returns the addresses asked for, and an error if any connection
// is still open.
func (d *connTracker) dialed() ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for i, c := range d.conns {
		c.mu.Lock()
		if !c.closed {
			errs = append(errs, errors.New("connection "+d.addrs[i]+" left open"))
		}
		c.mu.Unlock()
	}
	return d.addrs, errors.Join(errs...)
}

// closedPort returns a port on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
