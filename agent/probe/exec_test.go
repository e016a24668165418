package probe_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/probe"
	"github.com/podboot/podboot/agent/runtime"
)

// fakeExecer plays a command: it writes stderr then stdout (so that the
// probe's stdout-first order is its own doing) in small chunks, then
// exits with code or returns err; with block it waits for ctx to end, as
// the containerd runtime does, and returns ctx's error.
type fakeExecer struct {
	stdout, stderr string
	code           int
	err            error
	block          bool

	mu       sync.Mutex
	id       string
	cmd      []string
	ctxEnded bool
	timedOut bool
	badWrite error
}

func (f *fakeExecer) Exec(ctx context.Context, id string, cmd []string, sio runtime.StreamIO) error {
	f.mu.Lock()
	f.id, f.cmd = id, cmd
	f.mu.Unlock()
	f.write(sio.Stderr, f.stderr)
	f.write(sio.Stdout, f.stdout)
	if f.block {
		// As the containerd runtime: killed when ctx ends, or once it has
		// run for sio.Timeout.
		var timeout <-chan time.Time
		if sio.Timeout > 0 {
			timer := time.NewTimer(sio.Timeout)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
			f.mu.Lock()
			f.ctxEnded = true
			f.mu.Unlock()
			return fmt.Errorf("exec %q in container %q: %w", cmd, id, ctx.Err())
		case <-timeout:
			f.mu.Lock()
			f.timedOut = true
			f.mu.Unlock()
			return fmt.Errorf("exec %q in container %q: %w after %s", cmd, id, runtime.ErrExecTimeout, sio.Timeout)
		}
	}
	if f.code != 0 {
		return &runtime.ExitError{Cmd: cmd, Code: f.code}
	}
	return f.err
}

// write writes s in 1000-byte chunks and remembers a short or failed
// write: the runtime's copy would stop reading and block the command.
func (f *fakeExecer) write(w interface{ Write([]byte) (int, error) }, s string) {
	for len(s) > 0 {
		chunk := s[:min(len(s), 1000)]
		s = s[len(chunk):]
		n, err := w.Write([]byte(chunk))
		if err == nil && n != len(chunk) {
			err = fmt.Errorf("short write: %d of %d", n, len(chunk))
		}
		if err != nil {
			f.mu.Lock()
			f.badWrite = err
			f.mu.Unlock()
		}
	}
}

func TestProbeExec(t *testing.T) {
	big := strings.Repeat("o", 8*1024) + strings.Repeat("e", 12*1024)
	tests := []struct {
		name    string
		execer  *fakeExecer
		command []string
		want    outcome
		wantCmd []string
	}{
		{
			name:    "exit 0",
			execer:  &fakeExecer{stdout: "ok\n"},
			command: []string{"cat", "/tmp/healthy"},
			want:    outcome{Result: probe.Success, Output: "ok\n"},
			wantCmd: []string{"cat", "/tmp/healthy"},
		},
		{
			name:    "exit 1: stdout then stderr",
			execer:  &fakeExecer{stdout: "out;", stderr: "cat: can't open '/tmp/healthy': No such file or directory\n", code: 1},
			command: []string{"cat", "/tmp/healthy"},
			want:    outcome{Result: probe.Failure, Output: "out;cat: can't open '/tmp/healthy': No such file or directory\n"},
			wantCmd: []string{"cat", "/tmp/healthy"},
		},
		{
			name:    "output cut at 10 KiB",
			execer:  &fakeExecer{stdout: big[:8*1024], stderr: big[8*1024:], code: 2},
			command: []string{"sh", "-c", "noisy"},
			want:    outcome{Result: probe.Failure, Output: big[:10*1024]},
			wantCmd: []string{"sh", "-c", "noisy"},
		},
		{
			name:    "env expanded",
			execer:  &fakeExecer{},
			command: []string{"sh", "-c", "test $(MODE) = ok && echo $(UNSET)"},
			want:    outcome{Result: probe.Success},
			wantCmd: []string{"sh", "-c", "test ok = ok && echo $(UNSET)"},
		},
		{
			name:    "exec could not run",
			execer:  &fakeExecer{err: errors.New(`exec ["true"] in container "c1": container is stopped, not running`)},
			command: []string{"true"},
			want:    outcome{Result: probe.Unknown, Err: `exec ["true"] in container "c1": container is stopped, not running`},
			wantCmd: []string{"true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &probe.Prober{Exec: tt.execer}
			target := probe.Target{
				Pod:         testPod(),
				Container:   &corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "MODE", Value: "ok"}}},
				ContainerID: "c1",
			}
			h := &corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: tt.command}}
			got := newOutcome(p.Probe(t.Context(), h, target, time.Second))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]any{"c1", tt.wantCmd, nil}, []any{tt.execer.id, tt.execer.cmd, tt.execer.badWrite}, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("Exec got (-want +got) [container ID, command, write error]:\n%s", diff)
			}
		})
	}
}

// TestProbeExecTimeout: a command that outlives timeoutSeconds is a
// failure with kubelet's message; the timeout is the runtime's, counted
// from the process's start (it kills the process then), as containerd's
// CRI ExecSync counts it.
func TestProbeExecTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeExecer{stdout: "partial", block: true}
		p := &probe.Prober{Exec: f}
		h := &corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 10"}}}
		start := time.Now()
		got := newOutcome(p.Probe(t.Context(), h, probe.Target{Container: &corev1.Container{Name: "app"}, ContainerID: "c1"}, 3*time.Second))
		want := outcome{Result: probe.Failure, Output: `command timed out: "sh -c sleep 10" timed out after 3s`}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
		if !f.timedOut || f.ctxEnded {
			t.Errorf("the runtime's timeout ended the exec: %v, its context did: %v; want only the timeout", f.timedOut, f.ctxEnded)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Probe took %v, want the timeout 3s", d)
		}
	})
}

// TestProbeExecCanceled: a probe whose own context ends (its worker is
// stopping) is not a timeout: it could not run.
func TestProbeExecCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeExecer{block: true}
		p := &probe.Prober{Exec: f}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		h := &corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "10"}}}
		got := newOutcome(p.Probe(ctx, h, probe.Target{ContainerID: "c1"}, 5*time.Second))
		want := outcome{Result: probe.Unknown, Err: `exec ["sleep" "10"] in container "c1": context deadline exceeded`}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Probe (-want +got):\n%s", diff)
		}
	})
}

func TestProbeExecWithoutExecer(t *testing.T) {
	p := &probe.Prober{}
	h := &corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	got := newOutcome(p.Probe(t.Context(), h, probe.Target{ContainerID: "c1"}, time.Second))
	want := outcome{Result: probe.Unknown, Err: `exec probe ["true"] in container "c1": no exec runtime`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Probe (-want +got):\n%s", diff)
	}
}
