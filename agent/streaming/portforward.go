package streaming

import (
	"context"
	"io"
	"net/http"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
)

// ForwardFunc connects one forwarded connection, stream, to port in the
// pod until either side is done or ctx ends (the client went).
type ForwardFunc func(ctx context.Context, port int32, stream io.ReadWriteCloser) error

// ServePortForward upgrades r to a port-forward session (SPDY tunnelled
// through a WebSocket first, then SPDY, then WebSocket v4) and forwards
// each connection the client opens with forward. The session ends when
// the client goes or r's context ends (the caller ends it when the pod
// goes away: kubectl then reports the lost connection and exits).
func ServePortForward(w http.ResponseWriter, r *http.Request, forward ForwardFunc) {
	sw, r, cancel := newSession(w, r)
	defer cancel()
	go sw.closeWhenDone(r.Context())
	f := forwarder{ctx: r.Context(), forward: forward}
	if isTunnelingRequest(r) {
		conn, spdyReq, err := upgradeTunnel(sw, r, portforward.SupportedProtocols)
		if err != nil {
			return
		}
		defer conn.Close()
		portforward.ServePortForward(newTunnelWriter(conn), spdyReq, f, "", "", nil, idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
		return
	}
	var v4 *portforward.V4Options
	if isWebSocket(r) {
		// WebSocket v4 names its ports up front.
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v4 = opts
	}
	portforward.ServePortForward(sw, r, f, "", "", v4, idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// forwarder adapts a ForwardFunc to kubelet's streaming server, whose
// forwards run on a background context: the session's ends them.
type forwarder struct {
	ctx     context.Context
	forward ForwardFunc
}

func (f forwarder) PortForward(_ context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	return f.forward(f.ctx, port, stream)
}
