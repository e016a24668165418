// Package qmp is a minimal client for QEMU's machine protocol (QMP): the
// handshake, synchronous commands, and the asynchronous events QEMU sends in
// between (SHUTDOWN, RESET, POWERDOWN), which is all qemuboot needs to press
// the power button and tell a guest poweroff from a crash.
//
// It is written here rather than taken from digitalocean/go-qemu because
// the protocol is three JSON message shapes on a socket, and go-qemu would
// pull its libvirt code generator into the module graph.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Event is an asynchronous QMP event.
type Event struct {
	Name      string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

// ShutdownReason is the "reason" of a SHUTDOWN event: "guest-shutdown"
// when the guest powered itself off, "host-qmp-quit" after quit, ...
func (e Event) ShutdownReason() string {
	var d struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Reason
}

// message is any message QEMU sends: a greeting, a reply or an event.
type message struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// Conn is one QMP connection. Commands are serialised; events go to the
// channel given to Dial.
type Conn struct {
	conn    net.Conn
	mu      sync.Mutex // one command at a time
	replies chan message
	done    chan struct{}
	err     error // why the reader stopped; read after done is closed
}

// Dial connects to the QMP unix socket at path, retrying until ctx ends
// (QEMU creates the socket shortly after it starts), and negotiates
// capabilities. Events are sent to events, which must be drained; it is
// closed when the connection ends.
func Dial(ctx context.Context, path string, events chan<- Event) (*Conn, error) {
	var d net.Dialer
	var nc net.Conn
	for {
		var err error
		nc, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to QMP socket %s: %w", path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	c := &Conn{conn: nc, replies: make(chan message, 1), done: make(chan struct{})}
	greeting := make(chan error, 1)
	go c.read(events, greeting)
	select {
	case err := <-greeting:
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("read QMP greeting on %s: %w", path, err)
		}
	case <-ctx.Done():
		nc.Close()
		return nil, fmt.Errorf("read QMP greeting on %s: %w", path, ctx.Err())
	}
	if _, err := c.Execute(ctx, "qmp_capabilities"); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) read(events chan<- Event, greeting chan<- error) {
	defer close(c.done)
	if events != nil {
		defer close(events)
	}
	sc := bufio.NewScanner(c.conn)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	greeted := false
	for sc.Scan() {
		line := sc.Bytes()
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			c.err = fmt.Errorf("decode QMP message %q: %w", line, err)
			break
		}
		switch {
		case m.QMP != nil && !greeted:
			greeted = true
			greeting <- nil
		case m.Event != "":
			if events != nil {
				var e Event
				_ = json.Unmarshal(line, &e)
				events <- e
			}
		default:
			c.replies <- m
		}
	}
	if c.err == nil {
		c.err = sc.Err()
	}
	if c.err == nil {
		c.err = errors.New("QMP connection closed")
	}
	if !greeted {
		greeting <- c.err
	}
}

// Execute runs one command and returns its "return" value.
func (c *Conn) Execute(ctx context.Context, command string) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	req, _ := json.Marshal(map[string]string{"execute": command})
	if _, err := c.conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("send QMP command %s: %w", command, err)
	}
	select {
	case m := <-c.replies:
		if m.Error != nil {
			return nil, fmt.Errorf("QMP command %s: %s: %s", command, m.Error.Class, m.Error.Desc)
		}
		return m.Return, nil
	case <-c.done:
		return nil, fmt.Errorf("QMP command %s: %w", command, c.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("QMP command %s: %w", command, ctx.Err())
	}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }
