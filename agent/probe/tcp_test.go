package probe_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podboot/podboot/agent/probe"
)

func TestProbeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port
	closed := closedPort(t)
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "db", ContainerPort: int32(open)}}}

	tests := []struct {
		name       string
		action     corev1.TCPSocketAction
		podIP      string
		want       outcome
		wantDialed []string
	}{
		{
			name:       "open port",
			action:     corev1.TCPSocketAction{Port: intstr.FromInt(open)},
			podIP:      "127.0.0.1",
			want:       outcome{Result: probe.Success},
			wantDialed: []string{fmt.Sprintf("tcp 127.0.0.1:%d", open)},
		},
		{
			name:       "named port",
			action:     corev1.TCPSocketAction{Port: intstr.FromString("db")},
			podIP:      "127.0.0.1",
			want:       outcome{Result: probe.Success},
			wantDialed: []string{fmt.Sprintf("tcp 127.0.0.1:%d", open)},
		},
		{
			name:       "host field instead of pod IP",
			action:     corev1.TCPSocketAction{Host: "127.0.0.1", Port: intstr.FromInt(open)},
			podIP:      "pod-ip.invalid",
			want:       outcome{Result: probe.Success},
			wantDialed: []string{fmt.Sprintf("tcp 127.0.0.1:%d", open)},
		},
		{
			name:       "closed port",
			action:     corev1.TCPSocketAction{Port: intstr.FromInt(closed)},
			podIP:      "127.0.0.1",
			want:       outcome{Result: probe.Failure, Output: fmt.Sprintf("dial tcp 127.0.0.1:%d: connect: connection refused", closed)},
			wantDialed: []string{fmt.Sprintf("tcp 127.0.0.1:%d", closed)},
		},
		{
			name:   "unknown named port",
			action: corev1.TCPSocketAction{Port: intstr.FromString("web")},
			podIP:  "127.0.0.1",
			want:   outcome{Result: probe.Unknown, Err: `port "web" not found`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dial := &connTracker{}
			p := &probe.Prober{Dial: dial.Dial}
			action := tt.action
			got := newOutcome(p.Probe(t.Context(), &corev1.ProbeHandler{TCPSocket: &action}, probe.Target{Container: c, PodIP: tt.podIP}, time.Second))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
			dialed, err := dial.dialed()
			if err != nil {
				t.Error(err)
			}
			if diff := cmp.Diff(tt.wantDialed, dialed); diff != "" {
				t.Errorf("dialed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProbeTCPDefaultDial: without Prober.Dial the probe dials from the
// host (kubelet's ProbeDialer).
func TestProbeTCPDefaultDial(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := &probe.Prober{}
	h := &corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(l.Addr().(*net.TCPAddr).Port)}}
	got := newOutcome(p.Probe(t.Context(), h, probe.Target{PodIP: "127.0.0.1"}, time.Second))
	if diff := cmp.Diff(outcome{Result: probe.Success}, got); diff != "" {
		t.Errorf("Probe (-want +got):\n%s", diff)
	}
}

// TestProbeTCPTimeout: the dial gets the probe's timeout as its context's
// deadline (a dial that hangs, as to an address that drops SYNs).
func TestProbeTCPTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}
		p := &probe.Prober{Dial: hang}
		h := &corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(80)}}
		start := time.Now()
		got := newOutcome(p.Probe(t.Context(), h, probe.Target{PodIP: "10.1.2.3"}, 2*time.Second))
		if diff := cmp.Diff(outcome{Result: probe.Failure, Output: "dial tcp: context deadline exceeded"}, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Probe took %v, want the timeout 2s", d)
		}
	})
}
