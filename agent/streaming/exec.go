package streaming

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/podboot/podboot/agent/runtime"
)

const (
	// idleTimeout ends a session that moved no data for this long:
	// kubelet's --streaming-connection-idle-timeout default.
	idleTimeout = 4 * time.Hour
	// streamCreationTimeout bounds how long a SPDY client may take to
	// open its streams (kubelet's).
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
	// writeStatusTimeout bounds the write of a session's final status.
	writeStatusTimeout = 10 * time.Second
)

// Options are the streams a client asked for: PodExecOptions' and
// PodAttachOptions' stdin, stdout, stderr and tty.
type Options struct {
	Stdin  bool
	Stdout bool
	Stderr bool
	TTY    bool
}

// Validate refuses a session with no stream, as the API server does; a
// terminal has no separate stderr (kubelet drops it).
func (o *Options) Validate() error {
	if o.TTY {
		o.Stderr = false
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return nil
}

// SessionFunc runs an exec or an attach with the client's streams until it
// is over; ctx ends when the client goes. An exec's non-zero exit is a
// *runtime.ExitError.
type SessionFunc func(ctx context.Context, sio runtime.StreamIO) error

// ServeExec upgrades r to an exec session (WebSocket v5 first, then SPDY
// and WebSocket v4..v1) and runs run in it; the exit code goes back to
// the client, which exits with it.
func ServeExec(w http.ResponseWriter, r *http.Request, opts Options, run SessionFunc) {
	serveRemoteCommand(w, r, opts, run, false)
}

// ServeAttach is ServeExec for an attach.
func ServeAttach(w http.ResponseWriter, r *http.Request, opts Options, run SessionFunc) {
	serveRemoteCommand(w, r, opts, run, true)
}

func serveRemoteCommand(w http.ResponseWriter, r *http.Request, opts Options, run SessionFunc, attach bool) {
	sw, r, cancel := newSession(w, r)
	defer cancel()
	if isWebSocketV5(r) {
		serveWebSocketV5(sw, r, opts, run, attach)
		return
	}
	ropts := &remotecommand.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, TTY: opts.TTY}
	s := session{run: run, opts: opts}
	if attach {
		remotecommand.ServeAttach(sw, r, s, "", "", "", ropts, idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
		return
	}
	remotecommand.ServeExec(sw, r, s, "", "", "", nil, ropts, idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// session adapts a SessionFunc to kubelet's streaming server
// (k8s.io/cri-streaming), which serves SPDY and WebSocket up to v4.
type session struct {
	run  SessionFunc
	opts Options
}

func (s session) ExecInContainer(ctx context.Context, _, _, _ string, _ []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	err := s.run(ctx, s.streamIO(ctx, in, out, errw, tty, resize))
	// kubelet's server finds the exit code by type assertion only.
	if exit := (*runtime.ExitError)(nil); errors.As(err, &exit) {
		return exit
	}
	return err
}

func (s session) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return s.run(ctx, s.streamIO(ctx, in, out, errw, tty, resize))
}

// streamIO hands the run the streams the client asked for (kubelet's
// WebSocket path passes the others too, as no-ops).
func (s session) streamIO(ctx context.Context, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) runtime.StreamIO {
	var sio runtime.StreamIO
	if s.opts.Stdin && in != nil {
		sio.Stdin = in
	}
	if s.opts.Stdout && out != nil {
		sio.Stdout = out
	}
	if s.opts.Stderr && !tty && errw != nil {
		sio.Stderr = errw
	}
	sio.TTY = tty
	if tty && resize != nil {
		sizes := make(chan runtime.TerminalSize)
		go func() {
			defer close(sizes)
			for size := range resize {
				select {
				case sizes <- runtime.TerminalSize{Width: size.Width, Height: size.Height}:
				case <-ctx.Done():
					// kubelet's reader ends when its stream does; drain it.
					for range resize {
					}
					return
				}
			}
		}()
		sio.Resize = sizes
	}
	return sio
}

// sessionStatus is the status a session ends with on its error stream, as
// kubelet writes it: Success, NonZeroExitCode with the code as a cause,
// or an internal error.
func sessionStatus(err error, attach bool) metav1.Status {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}}
	if err == nil {
		st.Status = metav1.StatusSuccess
		return st
	}
	st.Status = metav1.StatusFailure
	if exit := (*runtime.ExitError)(nil); !attach && errors.As(err, &exit) {
		st.Reason = remotecommand.NonZeroExitCodeReason
		st.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type:    remotecommand.ExitCodeCauseType,
			Message: strconv.Itoa(exit.Code),
		}}}
		st.Message = fmt.Sprintf("command terminated with non-zero exit code: %v", exit)
		return st
	}
	what := "error executing command in container"
	if attach {
		what = "error attaching to container"
	}
	st.Reason = metav1.StatusReasonInternalError
	st.Code = http.StatusInternalServerError
	st.Message = fmt.Sprintf("Internal error occurred: %s: %v", what, err)
	return st
}

func writeSessionStatus(w io.Writer, st metav1.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
