package containerd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/podboot/podboot/agent/logs"
)

// logCopier copies a task's stdout and stderr FIFOs into its log file. The
// FIFOs outlive the agent: a new agent attaches a new copier to them.
type logCopier struct {
	io   *cio.DirectIO
	log  *logs.Writer
	done chan struct{} // closed when both streams ended and the log is closed
	taps attachTaps    // kubectl attach's clients (attach.go)
}

func (r *Runtime) fifoDir(id string) string {
	return filepath.Join(r.cfg.StateDir, "fifo", id)
}

// newFIFOs opens (creating) the FIFOs of a new task under <StateDir>/fifo/<id>.
func (r *Runtime) newFIFOs(id string) (*cio.DirectIO, error) {
	dir := r.fifoDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create FIFO directory %q: %w", dir, err)
	}
	fifos := cio.NewFIFOSet(cio.Config{
		Stdout: filepath.Join(dir, "stdout"),
		Stderr: filepath.Join(dir, "stderr"),
	}, nil)
	return r.openFIFOs(fifos)
}

func (r *Runtime) openFIFOs(fifos *cio.FIFOSet) (*cio.DirectIO, error) {
	// The runtime's context, not a request's: the FIFOs stay open for the
	// task's life.
	dio, err := cio.NewDirectIO(r.ctx, fifos)
	if err != nil {
		return nil, fmt.Errorf("open FIFOs %q: %w", fifos.Stdout, err)
	}
	return dio, nil
}

// startCopier copies dio into the log at path (appending) until the task's
// streams end or the copier is detached.
func (r *Runtime) startCopier(id string, dio *cio.DirectIO, path string) (*logCopier, error) {
	lw, err := r.logBudget.NewWriter(path, r.cfg.Logs)
	if err != nil {
		return nil, err
	}
	c := &logCopier{io: dio, log: lw, done: make(chan struct{})}
	var wg sync.WaitGroup
	copyStream := func(name string, rc io.ReadCloser) {
		defer wg.Done()
		if rc == nil {
			return
		}
		if _, err := io.Copy(c.taps.writer(name, lw.Stream(name)), rc); err != nil && r.ctx.Err() == nil {
			r.log.Debug("log copy ended", "container", id, "stream", name, "err", err)
		}
	}
	wg.Add(2)
	go copyStream(logs.Stdout, dio.Stdout)
	go copyStream(logs.Stderr, dio.Stderr)
	go func() {
		wg.Wait()
		if err := lw.Close(); err != nil {
			r.log.Warn("close container log", "container", id, "err", err)
		}
		close(c.done)
	}()
	r.mu.Lock()
	if old := r.copiers[id]; old != nil {
		defer old.detach()
	}
	r.copiers[id] = c
	r.mu.Unlock()
	return c, nil
}

// drainTimeout bounds every wait on a copier: how long it may take to copy
// what a task wrote before it exited, and to finish once its FIFOs are
// closed. A FIFO whose write end something still holds (or that the shim
// never opened) never ends on its own.
const drainTimeout = 2 * time.Second

// detach closes the copier's ends of the FIFOs and waits, at most
// drainTimeout, for the log to be closed. The task's ends stay open.
func (c *logCopier) detach() {
	c.io.Cancel()
	_ = c.io.Close()
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
	}
}

// dropCopier detaches and forgets the container's copier, if any.
func (r *Runtime) dropCopier(id string) {
	r.mu.Lock()
	c := r.copiers[id]
	delete(r.copiers, id)
	r.mu.Unlock()
	if c != nil {
		c.detach()
	}
}

// hasCopier says whether this Runtime attached a copier to the container
// (it stays known after the task's streams ended, until removal), so that
// a task seen running just before it exits is not attached twice.
func (r *Runtime) hasCopier(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.copiers[id] != nil
}

// waitCopier is called once the task has exited: it lets the copier drain
// the container's streams into its log for at most drainTimeout (or until
// ctx ends), then closes the FIFOs and drops the copier if it has not
// finished by then.
func (r *Runtime) waitCopier(ctx context.Context, id string) {
	r.mu.Lock()
	c := r.copiers[id]
	r.mu.Unlock()
	if c == nil {
		return
	}
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
		return
	case <-timer.C:
		r.log.Warn("container log streams did not end after its exit; closing them", "container", id, "after", drainTimeout)
	case <-ctx.Done():
	}
	r.mu.Lock()
	if r.copiers[id] == c {
		delete(r.copiers, id)
	}
	r.mu.Unlock()
	c.detach()
}

// newLogBudget holds the logs under LogRoot to Logs.MaxTotal.
func (r *Runtime) newLogBudget() *logs.Budget {
	return logs.NewBudget(r.cfg.LogRoot, r.cfg.Logs.MaxTotal, r.reportLogBudget)
}

// reportLogBudget logs what an enforcement of the log budget removed at
// debug level, as kubelet logs its container GC (V(4)): under pressure it
// happens at every rotation, and the agent's own log is bounded too.
func (r *Runtime) reportLogBudget(removed []string, err error) {
	if len(removed) > 0 {
		r.log.Debug("container logs over their budget: removed the oldest", "budget", r.cfg.Logs.MaxTotal, "removed", removed)
	}
	if err != nil {
		r.log.Warn("hold container logs to their budget", "err", err)
	}
}
