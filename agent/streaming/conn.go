package streaming

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// sessionWriter is the ResponseWriter a session is upgraded through. Once
// hijacked, a request's context no longer ends when its client goes
// (net/http ends it only when the handler returns): the session's does,
// at the first failed read of the hijacked connection (both SPDY and
// WebSocket read it without pause) or when it is closed.
type sessionWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc

	mu   sync.Mutex
	conn net.Conn // the hijacked connection, nil before
}

// newSession returns the writer to upgrade through and the request with
// the session's context.
func newSession(w http.ResponseWriter, r *http.Request) (*sessionWriter, *http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	return &sessionWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx), cancel
}

// closeWhenDone closes the hijacked connection, ending the session
// whatever its protocol, once ctx ends (the caller's reason, such as the
// pod being gone, or the session's own end). It returns when ctx ends.
func (s *sessionWriter) closeWhenDone(ctx context.Context) {
	<-ctx.Done()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

func (s *sessionWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over (no http.Hijacker)")
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := &sessionConn{Conn: conn, cancel: s.cancel}
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	// Every read goes through the watched conn, after what the server had
	// already buffered from the client.
	var buffered *bufio.Reader
	if rw != nil {
		buffered = rw.Reader
	}
	return c, bufio.NewReadWriter(bufio.NewReader(readerWithBuffered{buf: buffered, conn: c}), bufio.NewWriter(c)), nil
}

// readerWithBuffered reads the bytes bufio had taken from the connection
// before the hijack, then the connection.
type readerWithBuffered struct {
	buf  *bufio.Reader
	conn net.Conn
}

func (r readerWithBuffered) Read(p []byte) (int, error) {
	if r.buf != nil && r.buf.Buffered() > 0 {
		return r.buf.Read(p)
	}
	return r.conn.Read(p)
}

// Flush lets a session flush before the upgrade, as the server's writer
// would.
func (s *sessionWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// sessionConn ends the session's context when it fails to read or is
// closed.
type sessionConn struct {
	net.Conn
	cancel context.CancelFunc
	once   sync.Once
	closed atomic.Bool
}

// Read reads the connection; once the server closed it, a blocked read
// ends as the end of the stream rather than as a failure (which the
// WebSocket reader would log for every session).
func (c *sessionConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.once.Do(c.cancel)
		if c.closed.Load() {
			err = io.EOF
		}
	}
	return n, err
}

func (c *sessionConn) Close() error {
	c.closed.Store(true)
	c.once.Do(c.cancel)
	return c.Conn.Close()
}
