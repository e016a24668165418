package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// execSetupTimeout bounds an exec probe beyond its own timeout: the
// runtime's time to set the process up (cri-client's 2-minute runtime
// request timeout, which kubelet adds to the probe's).
const execSetupTimeout = 2 * time.Minute

// MaxOutput is how much of an exec's output a probe or a hook keeps
// (kubelet's maxReadLength, 10 KiB).
const MaxOutput = 10 * 1 << 10

// probeExec is kubelet's exec prober over RunInContainer: the output is
// the command's stdout followed by its stderr (kubelet's ExecSync result,
// not interleaved), cut at MaxOutput.
func (p *Prober) probeExec(ctx context.Context, h *corev1.ExecAction, t Target, timeout time.Duration) (Result, string, error) {
	var env []corev1.EnvVar
	if t.Container != nil {
		env = t.Container.Env
	}
	cmd := expandCommand(h.Command, env)
	if p.Exec == nil {
		return Unknown, "", fmt.Errorf("exec probe %q in container %q: no exec runtime", cmd, t.ContainerID)
	}
	// The timeout counts from the process's start (the runtime's
	// StreamIO.Timeout), as containerd's CRI ExecSync counts it: setting
	// the process up can take longer than a second on a slow board, and
	// kubelet does not count it. The whole call is bounded like
	// cri-client's ExecSync: the runtime's 2 minutes plus the timeout.
	ectx, cancel := context.WithTimeout(ctx, execSetupTimeout+timeout)
	defer cancel()
	out, err := RunInContainer(ectx, p.Exec, t.ContainerID, cmd, timeout)
	if err == nil {
		return Success, out.Combined(), nil
	}
	if exit, ok := errors.AsType[*runtime.ExitError](err); ok {
		if exit.Code == 0 {
			return Success, out.Combined(), nil
		}
		return Failure, out.Combined(), nil
	}
	if ctx.Err() == nil && (errors.Is(err, runtime.ErrExecTimeout) || errors.Is(ectx.Err(), context.DeadlineExceeded)) {
		// cri-client's ExecSync turns the runtime's deadline into
		// ErrCommandTimedOut, which the exec prober reports as a
		// failure with the error as output.
		return Failure, fmt.Sprintf("command timed out: %q timed out after %s", strings.Join(cmd, " "), timeout), nil
	}
	return Unknown, "", err
}

// ExecOutput is what a command run by RunInContainer wrote, each stream
// cut at MaxOutput.
type ExecOutput struct {
	Stdout, Stderr []byte
}

// Combined is kubelet's RunInContainer output, stdout then stderr, cut at
// MaxOutput as the exec prober's LimitWriter does.
func (o ExecOutput) Combined() string {
	b := append(append([]byte(nil), o.Stdout...), o.Stderr...)
	return string(b[:min(len(b), MaxOutput)])
}

// RunInContainer runs cmd in container id through e until it exits, ctx
// ends, or it has run for timeout (when positive; e kills it then),
// keeping the first MaxOutput bytes of each
// output stream. Output past that is read and dropped: a command is never
// blocked on a full pipe because the probe stopped listening.
func RunInContainer(ctx context.Context, e Execer, id string, cmd []string, timeout time.Duration) (ExecOutput, error) {
	var stdout, stderr cappedBuffer
	err := e.Exec(ctx, id, cmd, runtime.StreamIO{Stdout: &stdout, Stderr: &stderr, Timeout: timeout})
	return ExecOutput{Stdout: stdout.bytes(), Stderr: stderr.bytes()}, err
}

// cappedBuffer keeps the first MaxOutput bytes written to it. The
// runtime's copy goroutines may write to it concurrently with each other
// and until the exec is cleaned up, hence the lock.
type cappedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := MaxOutput - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (b *cappedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
