package probe

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

// probeGRPC is kubelet's grpc prober: grpc.health.v1.Health/Check of
// h.Service on the pod IP, in plain text (the TLS mode is behind the
// GRPCContainerProbeTLS gate, alpha and off in kubelet v1.37). Every
// outcome but SERVING is a failure; err is always nil.
func (p *Prober) probeGRPC(ctx context.Context, h *corev1.GRPCAction, t Target, timeout time.Duration) (Result, string, error) {
	service := ""
	if h.Service != nil {
		service = *h.Service
	}
	dial := p.dialer()
	opts := []grpc.DialOption{
		grpc.WithBlock(), //nolint:staticcheck // kubelet's: a connect failure is reported as such, not as a failed RPC.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		}),
	}
	if p.UserAgent != "" {
		opts = append(opts, grpc.WithUserAgent(p.UserAgent))
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(h.Port)))
	// DialContext with WithBlock, as kubelet does, so that the messages
	// tell a connection that never came up from a slow RPC.
	conn, err := grpc.DialContext(ctx, addr, opts...) //nolint:staticcheck // see above
	if err != nil {
		if err == context.DeadlineExceeded {
			return Failure, fmt.Sprintf("timeout: failed to connect service %q within %v: %+v", addr, timeout, err), nil
		}
		return Failure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
	}
	defer func() { _ = conn.Close() }()

	resp, err := healthpb.NewHealthClient(conn).Check(metadata.NewOutgoingContext(ctx, make(metadata.MD)), &healthpb.HealthCheckRequest{
		Service: service,
	})
	if err != nil {
		if stat, ok := status.FromError(err); ok {
			switch stat.Code() {
			case codes.Unimplemented:
				return Failure, fmt.Sprintf("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", stat.Message()), nil
			case codes.DeadlineExceeded:
				return Failure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
			}
		}
		return Failure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Failure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return Success, "service healthy", nil
}
