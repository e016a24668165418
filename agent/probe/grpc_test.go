package probe_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/probe"
)

// healthServer is grpc's health server, except that service "slow"
// answers only when the call ends, and every call's user agent is kept.
type healthServer struct {
	*health.Server
	mu         sync.Mutex
	userAgents []string
}

func (s *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	s.userAgents = append(s.userAgents, md.Get("user-agent")...)
	s.mu.Unlock()
	if req.Service == "slow" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Server.Check(ctx, req)
}

func serveGRPC(t *testing.T, withHealth bool) (int, *healthServer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := &healthServer{Server: health.NewServer()}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	if withHealth {
		healthpb.RegisterHealthServer(srv, hs)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().(*net.TCPAddr).Port, hs
}

func TestProbeGRPC(t *testing.T) {
	port, hs := serveGRPC(t, true)
	noHealth, _ := serveGRPC(t, false)
	closed := closedPort(t)
	const timeout = 300 * time.Millisecond

	tests := []struct {
		name    string
		port    int
		service *string
		ctx     func(context.Context) context.Context
		want    outcome
	}{
		{name: "serving", port: port, want: outcome{Result: probe.Success, Output: "service healthy"}},
		{name: "NOT_SERVING", port: port, service: new("down"), want: outcome{Result: probe.Failure, Output: `service unhealthy (responded with "NOT_SERVING")`}},
		{name: "unknown service", port: port, service: new("nope"), want: outcome{Result: probe.Failure, Output: "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"}},
		{name: "slow", port: port, service: new("slow"), want: outcome{Result: probe.Failure, Output: "timeout: health rpc did not complete within 300ms"}},
		{name: "no health service", port: noHealth, want: outcome{Result: probe.Failure, Output: "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"}},
		{name: "closed port", port: closed, want: outcome{Result: probe.Failure, Output: fmt.Sprintf(`timeout: failed to connect service "127.0.0.1:%d" within 300ms: context deadline exceeded`, closed)}},
		{
			name: "canceled",
			port: closed,
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			want: outcome{Result: probe.Failure, Output: fmt.Sprintf(`error: failed to connect service at "127.0.0.1:%d": context canceled`, closed)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dial := &connTracker{}
			p := &probe.Prober{UserAgent: userAgent, Dial: dial.Dial}
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			h := &corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(tt.port), Service: tt.service}}
			got := newOutcome(p.Probe(ctx, h, probe.Target{PodIP: "127.0.0.1"}, timeout))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
			if _, err := dial.dialed(); err != nil {
				t.Errorf("after Probe: %v", err)
			}
		})
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if len(hs.userAgents) == 0 {
		t.Fatal("the health server saw no call")
	}
	for _, ua := range hs.userAgents {
		// grpc-go appends its own name to the user agent.
		if !strings.HasPrefix(ua, userAgent+" grpc-go/") {
			t.Errorf("user agent %q, want %q followed by grpc-go's", ua, userAgent)
		}
	}
}

// TestProbeGRPCDial: the probe dials the pod IP through Prober.Dial.
func TestProbeGRPCDial(t *testing.T) {
	port, _ := serveGRPC(t, true)
	dial := &connTracker{to: fmt.Sprintf("127.0.0.1:%d", port)}
	p := &probe.Prober{Dial: dial.Dial}
	h := &corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}
	got := newOutcome(p.Probe(t.Context(), h, probe.Target{PodIP: "pod-ip.invalid"}, time.Second))
	if diff := cmp.Diff(outcome{Result: probe.Success, Output: "service healthy"}, got); diff != "" {
		t.Errorf("Probe (-want +got):\n%s", diff)
	}
	addrs, err := dial.dialed()
	if err != nil {
		t.Error(err)
	}
	if diff := cmp.Diff([]string{"tcp pod-ip.invalid:9000"}, addrs); diff != "" {
		t.Errorf("dialed (-want +got):\n%s", diff)
	}
}
