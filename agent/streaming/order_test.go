package streaming_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/streaming"
)

// frame is one WebSocket message of a remote command session: its
// channel (the first byte) and its payload.
type frame struct {
	Channel byte
	Data    string
}

// TestWebSocketV5Frames reads a v5 session frame by frame, as a raw
// client: the server sends the session's output, then its status, and
// nothing before. kubectl 1.32's client-go starts reading the connection
// before it has made its streams (kubernetes#131189, fixed in client-go
// 1.33): a frame that arrives at once, such as the empty "connection
// established" frame the API server sends on the lowest writable channel,
// can find no stream, and kubectl prints "Unknown stream id 1, discarding
// message" on its stderr.
func TestWebSocketV5Frames(t *testing.T) {
	const success = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success"}`
	tests := []struct {
		name  string
		query string
		run   streaming.SessionFunc
		want  []frame
	}{
		{
			name:  "stdout",
			query: "stdout=true&stderr=true",
			run: func(_ context.Context, sio runtime.StreamIO) error {
				_, err := io.WriteString(sio.Stdout, "out\n")
				return err
			},
			want: []frame{{1, "out\n"}, {3, success}},
		},
		{
			name:  "stderr only",
			query: "stderr=true",
			run: func(_ context.Context, sio runtime.StreamIO) error {
				_, err := io.WriteString(sio.Stderr, "err\n")
				return err
			},
			want: []frame{{2, "err\n"}, {3, success}},
		},
		{
			name:  "no output",
			query: "stdout=true",
			run:   func(context.Context, runtime.StreamIO) error { return nil },
			want:  []frame{{3, success}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := execServer(t, tc.run)
			ws := *withQuery(u, tc.query)
			ws.Scheme = "ws"
			d := websocket.Dialer{Subprotocols: []string{"v5.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
			conn, resp, err := d.Dial(ws.String(), http.Header{})
			if err != nil {
				t.Fatalf("dial %s: %v", ws.String(), err)
			}
			defer conn.Close()
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "v5.channel.k8s.io" {
				t.Fatalf("negotiated subprotocol %q, want v5.channel.k8s.io", got)
			}
			if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var got []frame
			for {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					if !websocket.IsCloseError(err, websocket.CloseNormalClosure) && !strings.Contains(err.Error(), "EOF") {
						t.Errorf("read: %v", err)
					}
					break
				}
				if len(msg) == 0 {
					t.Errorf("a message without a channel")
					continue
				}
				got = append(got, frame{msg[0], string(msg[1:])})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
		})
	}
}
