package soak

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/bench/podbench"
	"github.com/podboot/podboot/internal/nsutil"
)

// Config is one soak.
type Config struct {
	// Binaries from make build: Devnode runs the node, Mkimage builds the
	// busybox image, Runc cleans up after a failed power-off, CNIBinDir
	// (bin/cni) holds the pod network's plugins.
	Devnode, Mkimage, Runc, CNIBinDir string
	Busybox, Arch                     string // for mkimage
	// Work is the scratch directory (flash, state, netns pin, devnode.log).
	Work   string
	Listen string // the agent's API, host:port on loopback in the node's namespace

	Mix Mix
	// Duration of the sampling after every pod has started; a sample
	// every Interval, the Replaced pods' manifests edited every EditEvery.
	Duration, Interval, EditEvery time.Duration
	// WarmUp is left out of the judgement: the heap, the caches and the
	// crash loops' backoff (10 s doubling to 5 minutes) settle in it.
	WarmUp time.Duration
	// StartTimeout bounds the node's start and its pods' first start.
	StartTimeout time.Duration
	// PowerOffTimeout bounds devnode's graceful power-off before its
	// leftovers are swept away.
	PowerOffTimeout time.Duration
	// StateOnDisk keeps the state directory on Work's filesystem instead
	// of a tmpfs: for MeasureWrites, whose block writes a tmpfs would hide.
	StateOnDisk bool

	Log *slog.Logger
	// OnSample, if set, is called with every sample as it is taken.
	OnSample func(Sample)
}

// Report is what a soak found.
type Report struct {
	Started   time.Time
	Duration  time.Duration
	Interval  time.Duration
	EditEvery time.Duration
	WarmUp    time.Duration
	Mix       Mix
	Edits     int // manifest edits made
	// CgroupRoot is the agent's --cgroup-root: what must be gone after.
	CgroupRoot string
	Samples    []Sample
	Verdicts   []Verdict
}

// Growing lists the series that grew without bound.
func (r *Report) Growing() []Verdict {
	var out []Verdict
	for _, v := range r.Verdicts {
		if v.Growing {
			out = append(out, v)
		}
	}
	return out
}

// Run runs the soak: builds the image, writes the mix's manifests, starts
// the node in a network namespace of its own with its state on a tmpfs,
// waits for every pod to start, then samples and edits until Duration is
// up, and judges the series. The node is powered off (and swept if it
// must be), the tmpfs unmounted and the namespace unpinned whatever
// happens. A report with its samples so far comes back with any error.
func Run(ctx context.Context, c Config) (*Report, error) {
	rep := &Report{Started: time.Now(), Duration: c.Duration, Interval: c.Interval, EditEvery: c.EditEvery, WarmUp: c.WarmUp, Mix: c.Mix}
	n, err := startNode(ctx, c, c.Mix.Pods())
	if err != nil {
		return rep, err
	}
	runErr := c.soak(ctx, n, rep)
	stopErr := n.stop(runErr != nil)
	if runErr == nil && stopErr == nil {
		rep.Verdicts, runErr = Analyze(rep.Samples, c.WarmUp, Metrics())
	}
	return rep, errors.Join(runErr, stopErr)
}

func (c Config) soak(ctx context.Context, n *node, rep *Report) error {
	specs := c.Mix.Pods()
	c.Log.Info("waiting for the pods to start", "pods", len(specs))
	if err := n.waitStarted(ctx, specs, c.StartTimeout); err != nil {
		return err
	}
	root, err := n.prober.cgroupRoot()
	if err != nil {
		return err
	}
	rep.CgroupRoot = root
	c.Log.Info("soaking", "duration", c.Duration, "interval", c.Interval, "edit every", c.EditEvery)
	start := time.Now()
	sampleTick := time.NewTicker(c.Interval)
	defer sampleTick.Stop()
	// Edits fall half an edit period away from the samples on the same
	// beat, so a sample at a full minute sees the last edit settled.
	firstEdit := time.NewTimer(c.EditEvery / 2)
	defer firstEdit.Stop()
	var editC <-chan time.Time // nil until the first edit
	gen := 0
	take := func() error {
		s, err := n.sample(ctx, time.Since(start))
		if err != nil {
			return err
		}
		rep.Samples = append(rep.Samples, s)
		if c.OnSample != nil {
			c.OnSample(s)
		}
		return nil
	}
	if err := take(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-firstEdit.C:
			editTick := time.NewTicker(c.EditEvery)
			defer editTick.Stop()
			editC = editTick.C
			if err := c.edit(n, specs, gen+1, rep); err != nil {
				return err
			}
			gen++
		case <-editC:
			if err := c.edit(n, specs, gen+1, rep); err != nil {
				return err
			}
			gen++
		case <-sampleTick.C:
			if err := take(); err != nil {
				return err
			}
			if time.Since(start) >= c.Duration {
				return nil
			}
		}
	}
}

// edit writes generation gen of every Replaced pod's manifest.
func (c Config) edit(n *node, specs []PodSpec, gen int, rep *Report) error {
	for _, p := range specs {
		if p.Kind != Replaced {
			continue
		}
		if err := n.writeManifest(p, gen); err != nil {
			return err
		}
		rep.Edits++
	}
	return nil
}

// node is a running devnode with its namespace, tmpfs and prober.
type node struct {
	c      Config
	pods   string // the flash's pods/
	d      *podbench.Devnode
	prober Prober
	log    *os.File
	undo   []func() error // in reverse order at stop
}

// startNode prepares the flash (image, manifests), the network namespace
// and the state tmpfs, and starts devnode. On an error everything made so
// far is undone.
func startNode(ctx context.Context, c Config, specs []PodSpec) (n *node, err error) {
	work, err := filepath.Abs(c.Work)
	if err == nil {
		// mountinfo and the processes' command lines have resolved paths.
		work, err = filepath.EvalSymlinks(work)
	}
	if err != nil {
		return nil, fmt.Errorf("soak: resolve %s: %w", c.Work, err)
	}
	flash, state, ns := filepath.Join(work, "flash"), filepath.Join(work, "state"), filepath.Join(work, "netns")
	n = &node{c: c, pods: filepath.Join(flash, "pods")}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.stop(true))
		}
	}()
	for _, dir := range []string{n.pods, filepath.Join(flash, "images")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return n, fmt.Errorf("soak: %w", err)
		}
	}
	if out, err := exec.CommandContext(ctx, c.Mkimage, "-arch", c.Arch, "-busybox", c.Busybox, "-tag", Image, "-o", filepath.Join(flash, "images")).CombinedOutput(); err != nil {
		return n, fmt.Errorf("soak: build image %s with %s: %w: %s", Image, c.Mkimage, err, strings.TrimSpace(string(out)))
	}
	for _, p := range specs {
		if err := n.writeManifest(p, 0); err != nil {
			return n, err
		}
	}

	if err := nsutil.PinNewNetNS(ns); err != nil {
		return n, fmt.Errorf("soak: the node's network namespace: %w", err)
	}
	n.undo = append(n.undo, func() error { return nsutil.Unpin(ns) })
	if err := nsutil.Do(ns, loopbackUp); err != nil {
		return n, err
	}
	if c.StateOnDisk {
		if err := os.MkdirAll(state, 0o711); err != nil {
			return n, fmt.Errorf("soak: %w", err)
		}
	} else {
		if err := mountStateTmpfs(state); err != nil {
			return n, fmt.Errorf("soak: %w", err)
		}
		n.undo = append(n.undo, func() error { return unmount(state) })
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		return n, fmt.Errorf("soak: open /proc: %w", err)
	}

	logPath := filepath.Join(work, "devnode.log")
	if n.log, err = os.Create(logPath); err != nil {
		return n, fmt.Errorf("soak: %w", err)
	}
	n.undo = append(n.undo, n.log.Close)
	startCtx, cancel := context.WithTimeout(ctx, c.StartTimeout)
	defer cancel()
	c.Log.Info("starting devnode", "state", state, "listen", c.Listen, "log", logPath)
	n.d, err = podbench.StartDevnode(startCtx, podbench.DevnodeConfig{
		Bin: c.Devnode, Flash: flash, State: state, Listen: c.Listen,
		NetNS: ns, CNIBinDir: c.CNIBinDir, Log: n.log,
	})
	if err != nil {
		return n, fmt.Errorf("soak (log: %s): %w", logPath, err)
	}
	n.prober = Prober{
		Proc:   proc,
		Node:   podbench.Node{Proc: proc, StateDir: state, DevnodePID: n.d.PID()},
		State:  state,
		NetNS:  ns,
		API:    "http://" + c.Listen,
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: nsutil.Dialer(ns)}},
	}
	return n, nil
}

// writeManifest writes a pod's manifest into pods/ the way an editor that
// saves safely does: a temporary file beside it, renamed in.
func (n *node) writeManifest(p PodSpec, gen int) error {
	data, err := p.Manifest(gen)
	if err != nil {
		return err
	}
	staged, err := podbench.Stage(n.pods, p.Name+".yaml", data)
	if err != nil {
		return err
	}
	if err := staged.Publish(); err != nil {
		staged.Discard()
		return err
	}
	return nil
}

// waitStarted waits until every pod that is not crash-looping runs and
// every crash-looping one has restarted at least once.
func (n *node) waitStarted(ctx context.Context, specs []PodSpec, timeout time.Duration) error {
	want, crashing := 0, 0
	for _, p := range specs {
		if p.Kind == CrashLoop {
			crashing++
		} else {
			want++
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		running, restarts, err := n.prober.pods(ctx)
		if err == nil && running >= want && restarts >= crashing {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: the pods did not start within %s: %d running (want %d), %d restarts (want %d), last error %v",
				timeout, running, want, restarts, crashing, err)
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}

// sample reads every series, retrying a failed reading twice: on two
// loaded cores an API call can time out without anything being wrong.
func (n *node) sample(ctx context.Context, at time.Duration) (Sample, error) {
	var err error
	for try := range 3 {
		if try > 0 {
			if serr := sleep(ctx, 2*time.Second); serr != nil {
				return Sample{}, serr
			}
		}
		var v map[string]float64
		if v, err = n.prober.Sample(ctx); err == nil {
			return Sample{At: at, Values: v}, nil
		}
		n.c.Log.Warn("sample failed", "try", try+1, "err", err)
	}
	return Sample{}, fmt.Errorf("soak: sample at %s: %w", at.Round(time.Second), err)
}

// stop powers the node off (sweeping what it left if it must) and undoes
// what startNode made, last first.
func (n *node) stop(failed bool) error {
	var errs []error
	if n.d != nil {
		errs = append(errs, n.d.PowerOff(n.prober.Node, n.c.PowerOffTimeout, failed, n.c.Runc, n.c.Log))
		n.d = nil
	}
	for i := len(n.undo) - 1; i >= 0; i-- {
		errs = append(errs, n.undo[i]())
	}
	n.undo = nil
	return errors.Join(errs...)
}

// unmount unmounts the state tmpfs; a sweep may have detached it already.
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount the state tmpfs %s: %w", dir, err)
	}
	return nil
}

// loopbackUp brings up lo in the calling thread's network namespace: the
// agent's API listens on 127.0.0.1 there.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("soak: loopback up in the node's network namespace: %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
