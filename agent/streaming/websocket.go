package streaming

// Parts of this file are ported from k8s.io/apiserver v0.37.2,
// pkg/util/proxy/websocket.go, Copyright 2023 The Kubernetes Authors,
// Apache License 2.0. Changed: the server runs the session itself instead
// of translating it to SPDY for a kubelet; the streams are agent/runtime's.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/podboot/podboot/agent/runtime"
)

// isWebSocketV5 says whether r asks for a WebSocket with the
// v5.channel.k8s.io subprotocol (the one kubectl 1.30+ offers).
func isWebSocketV5(r *http.Request) bool {
	return wsstream.IsWebSocketRequestWithStreamCloseProtocol(r)
}

// v5Channels are the channels of a v5 session: stdin, stdout and stderr
// as asked, the error channel always (the final status), the resize
// channel always (a client without a terminal never writes to it).
func v5Channels(opts Options) []wsstream.ChannelType {
	channels := make([]wsstream.ChannelType, 5)
	channels[remotecommand.StreamStdIn] = channelIf(opts.Stdin, wsstream.ReadChannel)
	channels[remotecommand.StreamStdOut] = channelIf(opts.Stdout, wsstream.WriteChannel)
	channels[remotecommand.StreamStdErr] = channelIf(opts.Stderr, wsstream.WriteChannel)
	channels[remotecommand.StreamErr] = wsstream.WriteChannel
	channels[remotecommand.StreamResize] = wsstream.ReadChannel
	return channels
}

func channelIf(want bool, t wsstream.ChannelType) wsstream.ChannelType {
	if want {
		return t
	}
	return wsstream.IgnoreChannel
}

// serveWebSocketV5 serves an exec or attach over a v5 WebSocket: the
// upgrade, the run, then its status on the error channel and the close.
//
// Unlike the API server, it sends no empty frame on the lowest writable
// channel as the upgrade's "connection established": kubectl 1.32's
// client-go starts reading the connection before it has made its streams
// (kubernetes#131189, fixed by #131203 in 1.33), so a frame that arrives
// at once can find no stream and kubectl prints "Unknown stream id 1,
// discarding message". client-go never reads that frame. An exec's own
// output comes only once its process has started, milliseconds later;
// an attach to a container that is printing can still meet that client's
// race, as it would against an API server.
func serveWebSocketV5(w http.ResponseWriter, r *http.Request, opts Options, run SessionFunc, attach bool) {
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: v5Channels(opts)},
	})
	conn.SetIdleTimeout(idleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		// The handshake answered the client.
		return
	}
	defer conn.Close()
	ctx := r.Context()
	var sio runtime.StreamIO
	if opts.Stdin {
		sio.Stdin = streams[remotecommand.StreamStdIn]
	}
	if opts.Stdout {
		sio.Stdout = streams[remotecommand.StreamStdOut]
	}
	if opts.Stderr {
		sio.Stderr = streams[remotecommand.StreamStdErr]
	}
	sio.TTY = opts.TTY
	if opts.TTY {
		sizes := make(chan runtime.TerminalSize)
		go readResizes(ctx, streams[remotecommand.StreamResize], sizes)
		sio.Resize = sizes
	}
	runErr := run(ctx, sio)
	conn.SetWriteDeadline(writeStatusTimeout)
	// The client reads its streams until the connection ends: the
	// deferred Close ends them after the status.
	_ = writeSessionStatus(streams[remotecommand.StreamErr], sessionStatus(runErr, attach))
}

// readResizes decodes the client's terminal sizes (JSON objects with
// Width and Height) until the stream ends or ctx does, then closes sizes.
func readResizes(ctx context.Context, stream io.Reader, sizes chan<- runtime.TerminalSize) {
	defer close(sizes)
	dec := json.NewDecoder(stream)
	for {
		var size runtime.TerminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		select {
		case sizes <- size:
		case <-ctx.Done():
			return
		}
	}
}

// isWebSocket says whether r asks for a WebSocket at all.
func isWebSocket(r *http.Request) bool { return wsstream.IsWebSocketRequest(r) }
