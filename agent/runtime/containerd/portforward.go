package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/internal/nsutil"
)

// portForwardLinger is how long the other direction of a forwarded
// connection may go on once one direction is done, as containerd's CRI
// (after socat) lets it.
const portForwardLinger = time.Second

// PortForward connects stream to port on the pod's loopback address, in
// its network namespace (the host's for a hostNetwork pod), IPv4 first
// and then IPv6 as containerd's CRI does, and copies both ways until one
// direction is done (then the other gets portForwardLinger) or ctx ends.
func (r *Runtime) PortForward(ctx context.Context, uid types.UID, port int32, stream io.ReadWriter) error {
	what := fmt.Sprintf("port-forward to port %d of pod %s", port, uid)
	if err := validUID(string(uid)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if port <= 0 || port > 65535 {
		return fmt.Errorf("%s: invalid port", what)
	}
	rec, err := r.readRecord(string(uid))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: the pod has no sandbox", what)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dial := (&net.Dialer{}).DialContext
	if ns := rec.Sandbox.NetNS; ns != "" {
		dial = nsutil.Dialer(ns)
	}
	p := strconv.Itoa(int(port))
	conn, err := dial(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
	if err != nil {
		var err6 error
		conn, err6 = dial(ctx, "tcp6", net.JoinHostPort("::1", p))
		if err6 != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, err6))
		}
	}
	defer conn.Close()

	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(stream, conn)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(conn, stream)
		// The client is done sending: the server reads EOF and may still
		// answer.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		errc <- err
	}()
	var first error
	select {
	case first = <-errc:
	case <-ctx.Done():
		return nil
	}
	linger := time.NewTimer(portForwardLinger)
	defer linger.Stop()
	select {
	case <-errc:
	case <-linger.C:
	case <-ctx.Done():
	}
	if first != nil {
		return fmt.Errorf("%s: %w", what, first)
	}
	return nil
}

// PodDialer dials like net.Dialer.DialContext inside pod uid's network
// namespace (the host's for a hostNetwork pod): probes and hooks of a pod
// that has no address on a pod network (a node without one) reach it on
// its loopback, as port-forward does.
func (r *Runtime) PodDialer(uid types.UID) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	if err := validUID(string(uid)); err != nil {
		return nil, fmt.Errorf("dial into pod %s: %w", uid, err)
	}
	rec, err := r.readRecord(string(uid))
	if err != nil {
		return nil, fmt.Errorf("dial into pod %s: %w", uid, err)
	}
	if ns := rec.Sandbox.NetNS; ns != "" {
		return nsutil.Dialer(ns), nil
	}
	return (&net.Dialer{}).DialContext, nil
}
