package streaming

// Parts of this file are ported from k8s.io/apiserver v0.37.2,
// pkg/util/proxy/streamtunnel.go, and k8s.io/client-go v0.37.2,
// tools/portforward/tunneling_connection.go, Copyright 2023 The Kubernetes
// Authors, Apache License 2.0. Changed: the server ends the tunnel itself
// (the WebSocket is upgraded first, then SPDY is served over it through a
// ResponseWriter that swallows SPDY's own 101), with no upstream proxy.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

const (
	// tunnelingPrefix prefixes a SPDY protocol offered as a WebSocket
	// subprotocol: "SPDY/3.1+portforward.k8s.io".
	tunnelingPrefix  = "SPDY/3.1+"
	kubernetesSuffix = ".k8s.io"
)

// isTunnelingRequest says whether r asks for SPDY tunnelled through a
// WebSocket (kubectl 1.31+'s port-forward).
func isTunnelingRequest(r *http.Request) bool {
	return wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
}

// tunneledProtocols are the SPDY protocols r offers through the tunnel.
func tunneledProtocols(r *http.Request) []string {
	var out []string
	for _, p := range gwebsocket.Subprotocols(r) {
		if strings.HasPrefix(p, tunnelingPrefix) && strings.HasSuffix(p, kubernetesSuffix) {
			out = append(out, strings.TrimPrefix(p, tunnelingPrefix))
		}
	}
	return out
}

// upgradeTunnel upgrades r to a WebSocket that carries one of supported
// SPDY protocols, and returns the tunnel as a connection and the request
// SPDY's server is to see: a POST asking to upgrade to SPDY/3.1 with the
// chosen protocol. On failure the client has been answered.
func upgradeTunnel(w http.ResponseWriter, r *http.Request, supported []string) (net.Conn, *http.Request, error) {
	var chosen string
	for _, p := range tunneledProtocols(r) {
		for _, s := range supported {
			if p == s && chosen == "" {
				chosen = p
			}
		}
	}
	if chosen == "" {
		http.Error(w, "unable to upgrade: no tunneling spdy protocols provided", http.StatusBadRequest)
		return nil, nil, errors.New("no tunneling spdy protocols provided")
	}
	upgrader := gwebsocket.Upgrader{
		// The API's authentication, not the browser's origin, guards it
		// (as kube-apiserver's tunnel does).
		CheckOrigin:  func(*http.Request) bool { return true },
		Subprotocols: []string{tunnelingPrefix + chosen},
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("upgrade the port-forward tunnel: %w", err)
	}
	spdyReq := r.Clone(r.Context())
	spdyReq.Method = http.MethodPost
	spdyReq.Body = http.NoBody
	for _, h := range []string{wsstream.WebSocketProtocolHeader, "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"} {
		spdyReq.Header.Del(h)
	}
	spdyReq.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	spdyReq.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	spdyReq.Header.Set(httpstream.HeaderProtocolVersion, chosen)
	return &tunnelConn{ws: ws}, spdyReq, nil
}

// tunnelWriter is the ResponseWriter SPDY's server upgrades through once
// the tunnel is up: the 101 it writes was already sent (as the
// WebSocket's), and the connection it takes over is the tunnel.
type tunnelWriter struct {
	conn     net.Conn
	header   http.Header
	hijacked bool
}

func newTunnelWriter(conn net.Conn) *tunnelWriter {
	return &tunnelWriter{conn: conn, header: http.Header{}}
}

func (t *tunnelWriter) Header() http.Header { return t.header }

// Write drops what SPDY's server would answer without upgrading: the
// client already has its 101; the tunnel closes instead.
func (t *tunnelWriter) Write(p []byte) (int, error) { return len(p), nil }

func (t *tunnelWriter) WriteHeader(int) {}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.hijacked {
		return nil, nil, errors.New("the tunnel is already taken over")
	}
	t.hijacked = true
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}

// tunnelConn is a net.Conn over a WebSocket whose binary messages carry
// the SPDY byte stream (client-go's TunnelingConnection).
type tunnelConn struct {
	ws        *gwebsocket.Conn
	readMu    sync.Mutex
	inMessage io.Reader
	writeMu   sync.Mutex
	closeOnce sync.Once
}

var _ net.Conn = (*tunnelConn)(nil)

func (c *tunnelConn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.inMessage == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				var ce *gwebsocket.CloseError
				if errors.As(err, &ce) && ce.Code == gwebsocket.CloseNormalClosure {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != gwebsocket.BinaryMessage {
				return 0, errors.New("invalid message type received")
			}
			c.inMessage = r
		}
		n, err := c.inMessage.Read(p)
		if n == 0 && err == io.EOF {
			c.inMessage = nil
			continue
		}
		if err == io.EOF {
			// The message ended; the stream did not.
			c.inMessage, err = nil, nil
		}
		return n, err
	}
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.WriteMessage(gwebsocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close tells the other end the tunnel closes normally, then closes it.
func (c *tunnelConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		msg := gwebsocket.FormatCloseMessage(gwebsocket.CloseNormalClosure, "")
		werr := c.ws.WriteControl(gwebsocket.CloseMessage, msg, time.Now().Add(time.Second))
		err = c.ws.Close()
		if err == nil {
			err = werr
		}
	})
	return err
}

func (c *tunnelConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *tunnelConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

func (c *tunnelConn) SetDeadline(t time.Time) error {
	return errors.Join(c.ws.SetReadDeadline(t), c.ws.SetWriteDeadline(t))
}
func (c *tunnelConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *tunnelConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
