package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// TerminalSize is a terminal's size in characters, as kubectl sends it
// when the user's terminal is resized.
type TerminalSize struct {
	Width  uint16
	Height uint16
}

// StreamIO is the client's side of an exec or attach: what it asked for
// and the streams to it. A nil stream was not asked for.
type StreamIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr is nil with TTY: a terminal has one output.
	Stderr io.Writer
	TTY    bool
	// Resize delivers the client's terminal size, first at once and then
	// on every change; it is closed when the client goes. nil without TTY.
	Resize <-chan TerminalSize
	// Timeout, when positive, is how long the process may run once it has
	// started (containerd's CRI ExecSync timeout, which exec probes use):
	// it is killed then and Exec returns an error wrapping
	// ErrExecTimeout. The time the runtime takes to set the process up
	// does not count, so a slow board does not fail a quick command.
	Timeout time.Duration
}

// ErrExecTimeout is an exec whose process outlived StreamIO.Timeout.
var ErrExecTimeout = errors.New("exec timed out")

// ExitError is a command that ran and exited with a non-zero code, as the
// CRI reports it. It has the methods of k8s.io/utils/exec's ExitError, so
// that the streaming server carries the code back to kubectl, which exits
// with it.
type ExitError struct {
	Cmd  []string
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command '%s' exited with %d", strings.Join(e.Cmd, " "), e.Code)
}

func (e *ExitError) String() string { return e.Error() }

// Exited is true: the process ran and ended (a signal's death is the
// shell's 128+signal, as runc reports it).
func (e *ExitError) Exited() bool { return true }

// ExitStatus is the process's exit code.
func (e *ExitError) ExitStatus() int { return e.Code }

// Streamer runs the streaming side of the API against a container
// runtime: processes exec'd in a running container, attachment to a
// container's own process, and connections to a port in a pod's network
// namespace. It is separate from Runtime because only the API needs it;
// runtime/containerd implements it.
type Streamer interface {
	// Exec runs cmd in the running container id, copying the streams
	// until the process exits and its output is drained. A non-zero exit
	// is an *ExitError. When ctx ends first, the process is killed.
	Exec(ctx context.Context, id string, cmd []string, sio StreamIO) error
	// Attach copies the output of container id's own process to the
	// client until the container exits or ctx ends.
	Attach(ctx context.Context, id string, sio StreamIO) error
	// PortForward connects stream to port on the loopback address of pod
	// uid's network namespace (the host's for a hostNetwork pod) and
	// copies both ways until either side is done or ctx ends.
	PortForward(ctx context.Context, uid types.UID, port int32, stream io.ReadWriter) error
}
