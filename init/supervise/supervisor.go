package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM when a Service
// does not say.
const DefaultStopTimeout = 10 * time.Second

// noRestartCode is the exit code by which a service asks not to be
// restarted (gokrazy's convention).
const noRestartCode = 125

// Service is one supervised program.
type Service struct {
	// Name names the service in logs and errors.
	Name string
	// Command builds the command of one run; it is called again for every
	// restart because an exec.Cmd runs once. Its Stdout, Stderr and Env
	// are kept unless Output or Env say otherwise.
	Command func() *exec.Cmd
	// Env is added to the command's environment (the supervisor's own
	// environment when the command sets none).
	Env []string
	// Output receives the service's stdout and stderr.
	Output io.Writer
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL;
	// zero means DefaultStopTimeout.
	StopTimeout time.Duration
	// MaxFailures is how many failures in a row (a run shorter than the
	// backoff's healthy minute, or a start that failed) the supervisor
	// tolerates; after that it stops restarting the service and calls
	// OnGiveUp. Zero means restart forever.
	MaxFailures int
	// OnGiveUp is called, from the supervision goroutine, when the
	// service failed MaxFailures times in a row. PID 1 reboots then.
	OnGiveUp func(error)
}

// Supervisor starts services and keeps them running until Stop.
type Supervisor struct {
	log   *slog.Logger
	spawn func(Service) (process, error)

	mu       sync.Mutex // guards the fields below
	services []*supervised
	pids     map[int]bool
	stopped  bool
}

// New returns a Supervisor that logs to log.
func New(log *slog.Logger) *Supervisor {
	return &Supervisor{log: log, spawn: startExec, pids: map[int]bool{}}
}

// supervised is a service and its current run.
type supervised struct {
	svc  Service
	stop chan struct{} // closed by Stop
	done chan struct{} // closed when the supervision loop has returned

	mu       sync.Mutex // guards cur and stopping
	cur      *run
	stopping bool
}

// run is one running instance.
type run struct {
	proc    process
	started time.Time
	exited  chan struct{} // closed after Wait returned
}

// Start starts svc and supervises it. It returns once the first run has
// started, or with the error that kept it from starting.
func (s *Supervisor) Start(svc Service) error {
	if svc.Name == "" {
		return errors.New("start service: no name")
	}
	if svc.Command == nil {
		return fmt.Errorf("start service %q: no command", svc.Name)
	}
	if svc.StopTimeout < 0 {
		return fmt.Errorf("start service %q: negative stop timeout %v", svc.Name, svc.StopTimeout)
	}
	if svc.StopTimeout == 0 {
		svc.StopTimeout = DefaultStopTimeout
	}
	sv := &supervised{svc: svc, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return fmt.Errorf("start service %q: supervisor is stopped", svc.Name)
	}
	for _, o := range s.services {
		if o.svc.Name == svc.Name {
			s.mu.Unlock()
			return fmt.Errorf("start service %q: already started", svc.Name)
		}
	}
	r, err := s.startRun(sv, 1)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start service %q: %w", svc.Name, err)
	}
	s.services = append(s.services, sv)
	s.mu.Unlock()
	go s.supervise(sv, r)
	return nil
}

// startRun starts one run of sv; s.mu is held, so that Owns cannot miss a
// child that exits at once.
func (s *Supervisor) startRun(sv *supervised, attempt int) (*run, error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.stopping {
		return nil, errStopping
	}
	p, err := s.spawn(sv.svc)
	if err != nil {
		return nil, err
	}
	r := &run{proc: p, started: time.Now(), exited: make(chan struct{})}
	sv.cur = r
	s.pids[p.Pid()] = true
	s.log.Info("service started", "service", sv.svc.Name, "pid", p.Pid(), "attempt", attempt)
	return r, nil
}

var errStopping = errors.New("service is stopping")

// supervise waits for each run of sv to end and starts the next one.
func (s *Supervisor) supervise(sv *supervised, r *run) {
	defer close(sv.done)
	var b backoff
	attempt := 1
	failures := 0
	var lastErr error
	for {
		var ran time.Duration
		if r == nil {
			failures++
		}
		if r != nil {
			e := r.proc.Wait()
			ran = time.Since(r.started)
			s.mu.Lock()
			delete(s.pids, r.proc.Pid())
			s.mu.Unlock()
			close(r.exited)
			sv.mu.Lock()
			stopping := sv.stopping
			sv.mu.Unlock()
			s.log.Info("service exited", "service", sv.svc.Name, "pid", r.proc.Pid(),
				"status", e.status, "ran", ran.Round(time.Millisecond), "stopping", stopping)
			if stopping {
				return
			}
			if e.code == noRestartCode {
				s.log.Warn("service exited with code 125: not restarting", "service", sv.svc.Name)
				return
			}
			if ran >= resetAfter {
				failures = 0
			}
			failures++
			lastErr = fmt.Errorf("exited after %v: %s", ran.Round(time.Millisecond), e.status)
		}
		if sv.svc.MaxFailures > 0 && failures >= sv.svc.MaxFailures {
			err := fmt.Errorf("service %q failed %d times in a row, last: %w", sv.svc.Name, failures, lastErr)
			s.log.Error("service keeps failing: giving up", "service", sv.svc.Name, "failures", failures, "err", lastErr)
			if sv.svc.OnGiveUp != nil {
				sv.svc.OnGiveUp(err)
			}
			return
		}
		delay := b.next(ran)
		s.log.Info("service restarting", "service", sv.svc.Name, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-sv.stop:
			t.Stop()
			return
		case <-t.C:
		}
		attempt++
		s.mu.Lock()
		var err error
		r, err = s.startRun(sv, attempt)
		s.mu.Unlock()
		if errors.Is(err, errStopping) {
			return
		}
		if err != nil {
			s.log.Error("service failed to start", "service", sv.svc.Name, "attempt", attempt, "err", err)
			lastErr = fmt.Errorf("start: %w", err)
			r = nil
		}
	}
}

// Owns reports whether pid is a running service process that the
// supervisor waits for itself; ReapOrphans must leave it alone.
func (s *Supervisor) Owns(pid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pids[pid]
}

// Stop stops every service, the last started first: SIGTERM to its process
// group, SIGKILL after its StopTimeout (or when ctx ends), and SIGKILL to
// whatever is left in the group once the leader exited. Services are not
// restarted after Stop, and Start fails.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	services := slices.Clone(s.services)
	s.mu.Unlock()
	var errs []error
	for _, sv := range slices.Backward(services) {
		if err := s.stopService(ctx, sv); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Supervisor) stopService(ctx context.Context, sv *supervised) error {
	name := sv.svc.Name
	sv.mu.Lock()
	if sv.stopping {
		sv.mu.Unlock()
		<-sv.done
		return nil
	}
	sv.stopping = true
	close(sv.stop)
	r := sv.cur
	sv.mu.Unlock()

	if r == nil {
		<-sv.done
		return nil
	}
	select {
	case <-r.exited:
		<-sv.done
		return nil
	default:
	}
	s.log.Info("stopping service", "service", name, "pid", r.proc.Pid(), "timeout", sv.svc.StopTimeout)
	var errs []error
	if err := r.proc.SignalGroup(syscall.SIGTERM); err != nil {
		errs = append(errs, fmt.Errorf("stop service %q: SIGTERM: %w", name, err))
	}
	t := time.NewTimer(sv.svc.StopTimeout)
	defer t.Stop()
	select {
	case <-r.exited:
	case <-t.C:
		s.log.Warn("service did not stop in time: killing", "service", name, "pid", r.proc.Pid(), "timeout", sv.svc.StopTimeout)
	case <-ctx.Done():
		s.log.Warn("stop cancelled: killing service", "service", name, "pid", r.proc.Pid(), "err", ctx.Err())
	}
	// Also after a clean exit: nothing of the service outlives it.
	if err := r.proc.SignalGroup(syscall.SIGKILL); err != nil {
		errs = append(errs, fmt.Errorf("stop service %q: SIGKILL: %w", name, err))
	}
	<-r.exited
	<-sv.done
	return errors.Join(errs...)
}
