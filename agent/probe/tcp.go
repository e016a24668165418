package probe

import (
	"context"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probeTCP is kubelet's tcp prober: a connection that opens is success,
// and any error (refused, timed out) is a failure with the dial error as
// output ("dial tcp 10.0.0.5:80: connect: connection refused").
func (p *Prober) probeTCP(ctx context.Context, h *corev1.TCPSocketAction, t Target, timeout time.Duration) (Result, string, error) {
	port, err := ResolvePort(h.Port, t.Container)
	if err != nil {
		return Unknown, "", err
	}
	host := h.Host
	if host == "" {
		host = t.PodIP
	}
	if timeout > 0 {
		// net.Dialer reports a context deadline as "i/o timeout", the
		// same as kubelet's Dialer.Timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	conn, err := p.dialer()(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Failure, err.Error(), nil
	}
	// kubelet only logs a failed close.
	_ = conn.Close()
	return Success, "", nil
}
