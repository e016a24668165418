package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podboot/podboot/agent/runtime"
)

var _ runtime.Streamer = (*Runtime)(nil)

// execDrainTimeout bounds how long an exec's output copies may sit idle
// after its process exited: a background child that keeps the output
// open would otherwise hold the session forever (containerd's CRI can
// bound it too). A copy that is writing to a slow client is not idle: its
// output reaches the client before the exit status does.
const execDrainTimeout = 2 * time.Second

// execCleanupTimeout bounds the kill and delete of an exec process once
// its session is over (the request's context may be gone by then).
const execCleanupTimeout = 10 * time.Second

// execStartTimeout bounds an exec process's start, which the client's
// going does not cut short: cri-client's runtime request timeout, which
// kubelet's execs get. 30 s was too short for a postStart hook on the
// QEMU board under a loaded host (runc exec's setup took longer).
const execStartTimeout = 2 * time.Minute

// execFIFODir is where exec processes' FIFOs are made, beside the
// containers' <StateDir>/fifo/<id> (an ID is never "exec").
func (r *Runtime) execFIFODir() string {
	return filepath.Join(r.cfg.StateDir, "fifo", "exec")
}

// Exec runs cmd in the running container id with the container's own
// process settings (user, environment, working directory, capabilities),
// as containerd's CRI does, and TERM=xterm with a terminal.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, sio runtime.StreamIO) error {
	ctx = r.withNamespace(ctx)
	what := fmt.Sprintf("exec %q in container %q", cmd, id)
	if len(cmd) == 0 {
		return fmt.Errorf("%s: no command", what)
	}
	task, spec, err := r.runningTask(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	pspec := *spec.Process
	pspec.Args = slices.Clone(cmd)
	pspec.Terminal = sio.TTY
	pspec.Env = slices.Clone(pspec.Env)
	if sio.TTY {
		pspec.Env = append(pspec.Env, "TERM=xterm")
		// kubectl sends its terminal's size as soon as the session is up:
		// the terminal is made with it, so the command's first look at
		// it (stty size, a shell's prompt) is right. Later sizes arrive
		// through resizeLoop.
		if size, ok := firstSize(ctx, sio.Resize); ok {
			pspec.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
		}
	}
	execID, err := newExecID()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.MkdirAll(r.execFIFODir(), 0o700); err != nil {
		return fmt.Errorf("%s: create FIFO directory: %w", what, err)
	}

	// containerd closes the process's stdin only when told: the client's
	// end of input (kubectl's stdin closed) becomes CloseIO.
	// The shim opens every output FIFO it is given a path for, and cio
	// gives none to a nil stream: an output not asked for is dropped here.
	stdout, stderr := sio.Stdout, sio.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil && !sio.TTY {
		stderr = io.Discard
	}
	var output outputActivity
	stdout = activityWriter{w: stdout, a: &output}
	if stderr != nil {
		stderr = activityWriter{w: stderr, a: &output}
	}
	stdin := &closingReader{ready: make(chan struct{})}
	var streams []cio.Opt
	if sio.Stdin != nil {
		stdin.r = sio.Stdin
		streams = append(streams, cio.WithStreams(stdin, stdout, stderr))
	} else {
		streams = append(streams, cio.WithStreams(nil, stdout, stderr))
	}
	if sio.TTY {
		streams = append(streams, cio.WithTerminal)
	}
	streams = append(streams, cio.WithFIFODir(r.execFIFODir()))
	// Until the process has started, the shim has no stdin to close: the
	// end of a short input waits for the start (or for Exec to give up).
	stdinClose := func() error { return nil }
	defer func() { stdin.setClose(stdinClose) }()
	process, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(streams...))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	// Wait before Start, so an immediate exit is not missed.
	exitc, err := process.Wait(r.ctx)
	if err != nil {
		return fmt.Errorf("%s: wait: %w", what, err)
	}
	exited := false
	defer func() {
		// The request's context may be over: clean up with the runtime's.
		// The kill goes by exec ID, not by the PID Start returned:
		// containerd's WithProcessKill skips a process whose PID the
		// client never learnt, and that one may be running.
		cctx, cancel := context.WithTimeout(r.ctx, execCleanupTimeout)
		defer cancel()
		if !exited {
			_ = process.Kill(cctx, syscall.SIGKILL)
			select {
			case <-exitc:
			case <-cctx.Done():
			}
		}
		if _, err := process.Delete(cctx); err != nil {
			r.log.Debug("delete exec process", "container", id, "exec", execID, "err", err)
		}
	}()
	// Start is not cut short by the client going: the shim may have
	// started the process already (its output may even have reached the
	// client), and only a finished Start is sure to be killed above.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execStartTimeout)
	err = process.Start(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: start: %w", what, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	stdin.setClose(func() error {
		cctx, cancel := context.WithTimeout(r.ctx, execCleanupTimeout)
		defer cancel()
		return process.CloseIO(cctx, containerd.WithStdinCloser)
	})
	done := make(chan struct{})
	defer close(done)
	if sio.TTY && sio.Resize != nil {
		go r.resizeLoop(process, sio.Resize, done)
	}

	// The timeout runs from the start, as containerd's CRI ExecSync
	// starts its timer once the process has started.
	var timeout <-chan time.Time
	if sio.Timeout > 0 {
		timer := time.NewTimer(sio.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	var status containerd.ExitStatus
	select {
	case status = <-exitc:
		exited = status.Error() == nil
	case <-ctx.Done():
		// The client went: the process goes too (kubelet's exec does not
		// outlive its stream); the deferred cleanup kills it.
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case <-timeout:
		// The deferred cleanup kills it.
		return fmt.Errorf("%s: %w after %s", what, runtime.ErrExecTimeout, sio.Timeout)
	}
	code, _, err := status.Result()
	if err != nil {
		return fmt.Errorf("%s: wait: %w", what, err)
	}
	r.drain(ctx, process.IO(), &output)
	if code != 0 {
		return &runtime.ExitError{Cmd: slices.Clone(cmd), Code: int(code)}
	}
	return nil
}

// runningTask returns container id's task and spec, or an error when the
// task is not running (an exec needs a running container).
func (r *Runtime) runningTask(ctx context.Context, id string) (containerd.Task, *oci.Spec, error) {
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, nil, err
	}
	if spec.Process == nil {
		return nil, nil, errors.New("container spec has no process")
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("container is not running: %w", err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	if st.Status != containerd.Running {
		return nil, nil, fmt.Errorf("container is %s, not running", st.Status)
	}
	return task, spec, nil
}

// drain waits for the output copies to end after the process exited:
// until they have written everything to the client, unless they sit idle
// (nothing being written, nothing written) for execDrainTimeout or the
// client goes.
func (r *Runtime) drain(ctx context.Context, pio cio.IO, output *outputActivity) {
	if pio == nil {
		return
	}
	copied := make(chan struct{})
	go func() {
		pio.Wait()
		close(copied)
	}()
	output.touch()
	timer := time.NewTimer(execDrainTimeout)
	defer timer.Stop()
	for {
		select {
		case <-copied:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
			idle := output.idle()
			if idle >= execDrainTimeout {
				// Delete cancels the copies; the goroutine then ends.
				return
			}
			timer.Reset(execDrainTimeout - idle)
		}
	}
}

// outputActivity is what an exec's output copies are doing: how many
// writes to the client are under way and when the last one ended.
type outputActivity struct {
	mu       sync.Mutex
	inFlight int
	last     time.Time
}

// touch counts now as activity.
func (a *outputActivity) touch() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = time.Now()
}

// idle is how long no write has been under way; 0 while one is.
func (a *outputActivity) idle() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inFlight > 0 {
		return 0
	}
	return time.Since(a.last)
}

// activityWriter records its writes in an outputActivity.
type activityWriter struct {
	w io.Writer
	a *outputActivity
}

func (w activityWriter) Write(p []byte) (int, error) {
	w.a.mu.Lock()
	w.a.inFlight++
	w.a.mu.Unlock()
	defer func() {
		w.a.mu.Lock()
		w.a.inFlight--
		w.a.last = time.Now()
		w.a.mu.Unlock()
	}()
	return w.w.Write(p)
}

// resizeLoop applies the client's terminal sizes until sizes closes or
// done.
func (r *Runtime) resizeLoop(p containerd.Process, sizes <-chan runtime.TerminalSize, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case size, ok := <-sizes:
			if !ok {
				return
			}
			if size.Width == 0 || size.Height == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(r.ctx, execCleanupTimeout)
			err := p.Resize(ctx, uint32(size.Width), uint32(size.Height))
			cancel()
			if err != nil {
				r.log.Debug("resize exec terminal", "exec", p.ID(), "err", err)
			}
		}
	}
}

// firstSizeWait bounds the wait for a terminal client's first size.
// kubectl sends it right after the handshake, but on a loaded machine
// that took over a second once (CI: stty saw 0x0), and a client with a
// terminal that never sends one only starts later, not wrongly.
const firstSizeWait = 5 * time.Second

// firstSize waits, at most firstSizeWait, for the client's first terminal
// size.
func firstSize(ctx context.Context, sizes <-chan runtime.TerminalSize) (runtime.TerminalSize, bool) {
	if sizes == nil {
		return runtime.TerminalSize{}, false
	}
	timer := time.NewTimer(firstSizeWait)
	defer timer.Stop()
	select {
	case size, ok := <-sizes:
		return size, ok && size.Width > 0 && size.Height > 0
	case <-timer.C:
	case <-ctx.Done():
	}
	return runtime.TerminalSize{}, false
}

func newExecID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate exec ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// closingReader reads the client's stdin and, at its end, closes the
// process's stdin (CloseIO), once the process exists.
type closingReader struct {
	r       io.Reader
	ready   chan struct{} // closed when close is set
	once    sync.Once
	setOnce sync.Once
	close   func() error
}

// setClose sets what the end of input does; only the first call counts.
func (c *closingReader) setClose(f func() error) {
	c.setOnce.Do(func() {
		c.close = f
		close(c.ready)
	})
}

func (c *closingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.once.Do(func() {
			// cio starts copying before the process exists.
			<-c.ready
			_ = c.close()
		})
	}
	return n, err
}
