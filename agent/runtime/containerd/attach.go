package containerd

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/runtime"
)

// attachBuffer is how many chunks of output an attached client may fall
// behind before further chunks are dropped for it: a client that stops
// reading never holds up the container's output or its log.
const attachBuffer = 256

// Attach copies the output of container id's own process, from now on,
// to the client, until the container exits or ctx ends. podboot's
// containers have no stdin or terminal of their own (a pod's stdin and
// tty are not offered), so the client's stdin is read and dropped, as
// containerd's CRI drops it for a container without stdin.
func (r *Runtime) Attach(ctx context.Context, id string, sio runtime.StreamIO) error {
	ctx = r.withNamespace(ctx)
	if _, _, err := r.runningTask(ctx, id); err != nil {
		return fmt.Errorf("attach to container %q: %w", id, err)
	}
	r.mu.Lock()
	c := r.copiers[id]
	r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("attach to container %q: its output is not attached to this agent", id)
	}
	if sio.Stdin != nil {
		// Ends when the client's stream closes, after this returns.
		go func() { _, _ = io.Copy(io.Discard, sio.Stdin) }()
	}
	t := &tap{out: map[string]io.Writer{logs.Stdout: sio.Stdout, logs.Stderr: sio.Stderr}, chunks: make(chan chunk, attachBuffer)}
	if sio.TTY {
		// One terminal for both, as a TTY container's output would be.
		t.out[logs.Stderr] = sio.Stdout
	}
	c.taps.add(t)
	defer c.taps.remove(t)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.done:
			// The streams ended: what was tapped before still goes out.
			t.flush()
			return nil
		case ch := <-t.chunks:
			t.write(ch)
		}
	}
}

// chunk is one write of a container's stream.
type chunk struct {
	stream string
	data   []byte
}

// tap is one attached client.
type tap struct {
	out    map[string]io.Writer // by stream; nil = not wanted
	chunks chan chunk
	failed bool // a write to the client failed: the rest is dropped
}

func (t *tap) write(ch chunk) {
	w := t.out[ch.stream]
	if w == nil || t.failed {
		return
	}
	if _, err := w.Write(ch.data); err != nil {
		t.failed = true
	}
}

func (t *tap) flush() {
	for {
		select {
		case ch := <-t.chunks:
			t.write(ch)
		default:
			return
		}
	}
}

// attachTaps are the clients attached to a container's output; the log
// copier hands them every chunk it writes to the log.
type attachTaps struct {
	mu   sync.Mutex
	taps map[*tap]bool
}

func (a *attachTaps) add(t *tap) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.taps == nil {
		a.taps = map[*tap]bool{}
	}
	a.taps[t] = true
}

func (a *attachTaps) remove(t *tap) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.taps, t)
}

// writer returns the log stream's writer that also hands what it writes
// to the attached clients.
func (a *attachTaps) writer(stream string, log io.Writer) io.Writer {
	return &tapWriter{taps: a, stream: stream, log: log}
}

type tapWriter struct {
	taps   *attachTaps
	stream string
	log    io.Writer
}

func (w *tapWriter) Write(p []byte) (int, error) {
	w.taps.mu.Lock()
	if len(w.taps.taps) > 0 {
		data := append([]byte(nil), p...)
		for t := range w.taps.taps {
			select {
			case t.chunks <- chunk{stream: w.stream, data: data}:
			default: // the client is behind: dropped for it
			}
		}
	}
	w.taps.mu.Unlock()
	return w.log.Write(p)
}
