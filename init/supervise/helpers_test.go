package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logRecorder is a slog handler that keeps what was logged.
type logRecorder struct {
	mu      sync.Mutex
	records []logged
}

type logged struct {
	msg   string
	attrs map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, logged{msg: r.Message, attrs: attrs})
	return nil
}

// find returns the logged records with message msg whose attributes
// include want.
func (l *logRecorder) find(msg string, want map[string]string) []logged {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logged
	for _, r := range l.records {
		if r.msg != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if r.attrs[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// waitLog waits for a record from a real child process; there is no fake
// clock for those.
func (l *logRecorder) waitLog(t *testing.T, msg string, want map[string]string) logged {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := l.find(msg, want); len(r) > 0 {
			return r[0]
		}
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log %q with %v; logged: %v", msg, want, l.records)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newRecorded() (*logRecorder, *slog.Logger) {
	l := &logRecorder{}
	return l, slog.New(l)
}

// fakeRun is how one fake run behaves.
type fakeRun struct {
	ran        time.Duration // how long it runs by itself; < 0: until signalled
	code       int
	ignoreTerm bool
}

// fakeSpawner starts fake processes on the synctest clock.
type fakeSpawner struct {
	mu      sync.Mutex
	runs    map[string][]fakeRun // per service, in start order; the last repeats
	starts  map[string][]time.Duration
	signals []string
	t0      time.Time
	nextPID int
}

func newFakeSpawner(runs map[string][]fakeRun) *fakeSpawner {
	return &fakeSpawner{runs: runs, starts: map[string][]time.Duration{}, t0: time.Now(), nextPID: 100}
}

func (f *fakeSpawner) spawn(svc Service) (process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	runs := f.runs[svc.Name]
	n := len(f.starts[svc.Name])
	r := runs[min(n, len(runs)-1)]
	f.starts[svc.Name] = append(f.starts[svc.Name], time.Since(f.t0))
	f.nextPID++
	return &fakeProcess{f: f, name: svc.Name, pid: f.nextPID, run: r, sigs: make(chan syscall.Signal, 4)}, nil
}

func (f *fakeSpawner) startTimes() map[string][]time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.starts)
}

func (f *fakeSpawner) signalLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.signals)
}

type fakeProcess struct {
	f    *fakeSpawner
	name string
	pid  int
	run  fakeRun
	sigs chan syscall.Signal
}

func (p *fakeProcess) Pid() int { return p.pid }

func (p *fakeProcess) Wait() exit {
	var done <-chan time.Time
	if p.run.ran >= 0 {
		t := time.NewTimer(p.run.ran)
		defer t.Stop()
		done = t.C
	}
	for {
		select {
		case <-done:
			return exit{code: p.run.code, status: fmt.Sprintf("exit status %d", p.run.code)}
		case sig := <-p.sigs:
			if sig == syscall.SIGKILL || !p.run.ignoreTerm {
				return exit{code: -1, status: "signal: " + sig.String()}
			}
		}
	}
}

func (p *fakeProcess) SignalGroup(sig syscall.Signal) error {
	p.f.mu.Lock()
	p.f.signals = append(p.f.signals, fmt.Sprintf("%s %s at %v", p.name, sig, time.Since(p.f.t0)))
	p.f.mu.Unlock()
	select {
	case p.sigs <- sig:
	default:
	}
	return nil
}
