package podbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// Config is one benchmark run.
type Config struct {
	Devnode, Mkimage, Runc string // binaries; Runc cleans up after a failed power-off
	Busybox, Arch          string // for mkimage
	Work                   string // scratch directory: flash, state, logs
	Listen                 string // the agent's API address, host:port on loopback

	Sequential int   // pods started one at a time
	Burst      int   // pods started at once
	MemoryAt   []int // running pod counts to measure memory at during the sequential round (0: before it)
	CPUWindow  time.Duration
	Settle     time.Duration // wait before each memory figure, for start-up garbage to be collected
	PodTimeout time.Duration // for one pod to run, or a round's pods to go
	// PowerOffTimeout bounds devnode's graceful power-off before its
	// leftovers are swept away.
	PowerOffTimeout time.Duration

	Podboot bool
	Podman  *Podman // nil: no podman rounds

	Log *slog.Logger
}

// Image is the image every benchmark pod runs.
const Image = "busybox:1.36"

// podPrefix starts the name of every pod the benchmark makes, on both
// sides, so that cleanup removes only its own.
const podPrefix = "podbench-"

func (c Config) pod(name string) PodSpec {
	return PodSpec{Name: podPrefix + name, Containers: 2, Image: Image, Command: []string{"sleep", "86400"}, GracePeriod: 2}
}

func (c Config) pods(round string, n int) []PodSpec {
	specs := make([]PodSpec, n)
	for i := range specs {
		specs[i] = c.pod(fmt.Sprintf("%s-%02d", round, i))
	}
	return specs
}

// Results are the figures of one run; a failed run keeps those it got.
type Results struct {
	Started                  time.Time
	Sequential, Burst        int // pods planned in each round
	PodbootSeq, PodbootBurst Summary
	PodmanSeq, PodmanBurst   Summary
	Memory                   map[int]Memory // by running pods
	AgentCPU                 float64        // percent of one core; <0: not measured
	CPUWindow                time.Duration
	CPUPods                  int
	Notes                    []string
	// Seen are, for podboot's rounds, the latencies from the manifest's
	// rename to the pod's first appearance in the API (the manifest
	// watcher's share of the latency), in milliseconds, by round.
	Seen map[string][]float64
	// Samples are the raw latencies in milliseconds, in the order the pods
	// were started, by round: "podboot-seq", "podboot-burst", "podman-seq",
	// "podman-burst".
	Samples map[string][]float64
}

func (r *Results) addSplit(round string, d time.Duration) {
	r.Seen[round] = append(r.Seen[round], float64(d.Microseconds())/1000)
}

// SeenSummary summarizes Seen of a round.
func (r *Results) SeenSummary(round string) Summary {
	lat := make([]time.Duration, len(r.Seen[round]))
	for i, ms := range r.Seen[round] {
		lat[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return Summarize(lat)
}

func (r *Results) record(round string, lat []time.Duration) Summary {
	ms := make([]float64, len(lat))
	for i, d := range lat {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	r.Samples[round] = ms
	return Summarize(lat)
}

// Run runs the rounds Config asks for. It always stops the devnode and
// removes the podman pods it made, also when a round fails or ctx ends.
func Run(ctx context.Context, c Config) (*Results, error) {
	res := &Results{Started: time.Now(), Sequential: c.Sequential, Burst: c.Burst, Memory: map[int]Memory{}, AgentCPU: -1, Samples: map[string][]float64{}, Seen: map[string][]float64{}}
	// The node's processes are told apart by the absolute paths they name.
	work, err := filepath.Abs(c.Work)
	if err != nil {
		return res, fmt.Errorf("resolve %s: %w", c.Work, err)
	}
	c.Work = work
	flash := filepath.Join(c.Work, "flash")
	for _, dir := range []string{filepath.Join(flash, "pods"), filepath.Join(flash, "images"), filepath.Join(c.Work, "podman")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, fmt.Errorf("prepare %s: %w", dir, err)
		}
	}
	archive, err := c.buildImage(ctx, filepath.Join(flash, "images"))
	if err != nil {
		return res, err
	}
	var errs []error
	if c.Podboot {
		errs = append(errs, c.runPodboot(ctx, flash, res))
	}
	if c.Podman != nil && ctx.Err() == nil {
		errs = append(errs, c.runPodman(ctx, archive, res))
	}
	return res, errors.Join(errs...)
}

// buildImage writes the busybox image archive and returns its path.
func (c Config) buildImage(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Mkimage, "-arch", c.Arch, "-busybox", c.Busybox, "-tag", Image, "-o", dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build image %s with %s: %w: %s", Image, c.Mkimage, err, strings.TrimSpace(string(out)))
	}
	archives, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil || len(archives) != 1 {
		return "", fmt.Errorf("build image %s: want one archive in %s, found %v", Image, dir, archives)
	}
	return archives[0], nil
}

func (c Config) runPodboot(ctx context.Context, flash string, res *Results) (err error) {
	state, err := filepath.Abs(filepath.Join(c.Work, "state"))
	if err != nil {
		return fmt.Errorf("podboot: %w", err)
	}
	logPath := filepath.Join(c.Work, "devnode.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("podboot: %w", err)
	}
	defer logFile.Close()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c.Log.Info("starting devnode", "state", state, "listen", c.Listen, "log", logPath)
	d, err := StartDevnode(startCtx, DevnodeConfig{Bin: c.Devnode, Flash: flash, State: state, Listen: c.Listen, Log: logFile})
	if err != nil {
		return fmt.Errorf("podboot (log: %s): %w", logPath, err)
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		return errors.Join(fmt.Errorf("podboot: open /proc: %w", err), d.Stop(2*time.Minute))
	}
	node := Node{Proc: proc, StateDir: state, DevnodePID: d.PID()}
	defer func() {
		// devnode bounds its own power-off (the agent's 5 minutes to stop
		// pods, and a margin); a run that already failed has likely left
		// the agent stuck, so it gets less before the sweep.
		grace := c.PowerOffTimeout
		if err != nil {
			grace = min(grace, time.Minute)
		}
		c.Log.Info("powering devnode off", "timeout", grace)
		stopErr := d.Stop(grace)
		if procs, perr := node.Processes(); stopErr != nil || perr != nil || len(procs) > 0 {
			did, sweepErr := node.Sweep(c.Runc)
			stopErr = errors.Join(stopErr, perr, sweepErr)
			if did != "" {
				stopErr = errors.Join(stopErr, fmt.Errorf("devnode left things behind, swept: %s", did))
			}
		}
		err = errors.Join(err, stopErr)
	}()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	tr, err := Track(watchCtx, "http://"+c.Listen, &http.Client{})
	if err != nil {
		return fmt.Errorf("podboot: %w", err)
	}
	defer func() {
		if n, cause := tr.Reconnects(); n > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("podboot: the API watch was reopened %d times (last: %v); latencies seen after a reopen are late by up to a relist", n, cause))
		}
	}()
	b := podbootBench{c: c, pods: filepath.Join(flash, "pods"), tr: tr, node: node}

	if err := b.warmUp(ctx); err != nil {
		return err
	}
	if slices.Contains(c.MemoryAt, 0) {
		if err := b.measureMemory(ctx, 0, res); err != nil {
			return err
		}
	}
	seq := c.pods("seq", c.Sequential)
	lat, err := b.sequential(ctx, seq, res)
	res.PodbootSeq = res.record("podboot-seq", lat)
	if err != nil {
		return err
	}
	if c.CPUWindow > 0 {
		if err := b.measureCPU(ctx, len(seq), res); err != nil {
			return err
		}
	}
	if err := b.remove(ctx, seq); err != nil {
		return err
	}
	lat, err = b.burst(ctx, c.pods("burst", c.Burst), res)
	res.PodbootBurst = res.record("podboot-burst", lat)
	if err != nil {
		return err
	}
	return b.remove(ctx, c.pods("burst", c.Burst))
}

type podbootBench struct {
	c    Config
	pods string
	tr   *Tracker
	node Node
}

// start publishes one staged manifest and returns the instant it appeared.
func start(s Staged) (time.Time, error) {
	t0 := time.Now()
	return t0, s.Publish()
}

func (b podbootBench) stage(spec PodSpec) (Staged, error) {
	return Stage(b.pods, spec.Name+".yaml", spec.Manifest())
}

// warmUp runs and removes one pod, so that the first figure does not pay
// for the first snapshot of the image.
func (b podbootBench) warmUp(ctx context.Context) error {
	spec := b.c.pod("warmup")
	if _, err := b.sequential(ctx, []PodSpec{spec}, nil); err != nil {
		return fmt.Errorf("podboot warm-up: %w", err)
	}
	return b.remove(ctx, []PodSpec{spec})
}

func (b podbootBench) sequential(ctx context.Context, specs []PodSpec, res *Results) ([]time.Duration, error) {
	var lat []time.Duration
	for i, spec := range specs {
		s, err := b.stage(spec)
		if err != nil {
			return lat, err
		}
		t0, err := start(s)
		if err != nil {
			s.Discard()
			return lat, err
		}
		waitCtx, cancel := context.WithTimeout(ctx, b.c.PodTimeout)
		at, err := b.tr.WaitRunning(waitCtx, spec.Name)
		cancel()
		if err != nil {
			return lat, fmt.Errorf("podboot: %w", err)
		}
		lat = append(lat, at.Running.Sub(t0))
		if res != nil {
			res.addSplit("podboot-seq", at.Seen.Sub(t0))
		}
		if res != nil && slices.Contains(b.c.MemoryAt, i+1) {
			if err := b.measureMemory(ctx, i+1, res); err != nil {
				return lat, err
			}
		}
	}
	if res != nil {
		b.c.Log.Info("podboot: started pods one at a time", "summary", Summarize(lat))
	}
	return lat, nil
}

func (b podbootBench) burst(ctx context.Context, specs []PodSpec, res *Results) ([]time.Duration, error) {
	staged := make([]Staged, 0, len(specs))
	defer func() {
		for _, s := range staged {
			s.Discard()
		}
	}()
	for _, spec := range specs {
		s, err := b.stage(spec)
		if err != nil {
			return nil, err
		}
		staged = append(staged, s)
	}
	t0 := make([]time.Time, len(staged))
	for i, s := range staged {
		var err error
		if t0[i], err = start(s); err != nil {
			return nil, err
		}
	}
	var lat []time.Duration
	waitCtx, cancel := context.WithTimeout(ctx, b.c.PodTimeout)
	defer cancel()
	for i, spec := range specs {
		at, err := b.tr.WaitRunning(waitCtx, spec.Name)
		if err != nil {
			return lat, fmt.Errorf("podboot: %w", err)
		}
		lat = append(lat, at.Running.Sub(t0[i]))
		res.addSplit("podboot-burst", at.Seen.Sub(t0[i]))
	}
	b.c.Log.Info("podboot: started pods at once", "summary", Summarize(lat))
	return lat, nil
}

// remove deletes the pods' manifests and waits until the API no longer
// shows them and their shims have exited.
func (b podbootBench) remove(ctx context.Context, specs []PodSpec) error {
	names := make([]string, len(specs))
	for i, spec := range specs {
		names[i] = spec.Name
		if err := os.Remove(filepath.Join(b.pods, spec.Name+".yaml")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove manifest of %s: %w", spec.Name, err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 3*b.c.PodTimeout)
	defer cancel()
	if err := b.tr.WaitGone(waitCtx, names); err != nil {
		return fmt.Errorf("podboot: %w", err)
	}
	for {
		procs, err := b.node.Processes()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(procs, func(p Process) bool { return p.Role == RoleShim }) {
			return nil
		}
		if err := sleep(waitCtx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("podboot: wait for the shims of removed pods to exit: %w", err)
		}
	}
}

func (b podbootBench) measureMemory(ctx context.Context, pods int, res *Results) error {
	if err := sleep(ctx, b.c.Settle); err != nil {
		return err
	}
	m, err := b.node.Memory()
	if err != nil {
		return fmt.Errorf("podboot: %w", err)
	}
	res.Memory[pods] = m
	b.c.Log.Info("podboot: memory", "pods", pods, "podagent_mb", mb(m.Agent), "containerd_mb", mb(m.Containerd), "shims_mb", mb(m.Shims), "shims", m.ShimCount, "total_mb", mb(m.Total()), "podagent_threads", m.AgentThreads)
	return nil
}

func (b podbootBench) measureCPU(ctx context.Context, pods int, res *Results) error {
	pid, err := b.node.Agent()
	if err != nil {
		return fmt.Errorf("podboot: %w", err)
	}
	if err := sleep(ctx, b.c.Settle); err != nil {
		return err
	}
	c0, err := b.node.CPUTime(pid)
	if err != nil {
		return err
	}
	w0 := time.Now()
	if err := sleep(ctx, b.c.CPUWindow); err != nil {
		return err
	}
	c1, err := b.node.CPUTime(pid)
	if err != nil {
		return fmt.Errorf("podboot: podagent (pid %d) gone during the CPU window: %w", pid, err)
	}
	wall := time.Since(w0)
	res.AgentCPU = 100 * float64(c1-c0) / float64(wall)
	res.CPUWindow, res.CPUPods = wall.Round(time.Second), pods
	b.c.Log.Info("podboot: agent cpu", "pods", pods, "window", wall, "percent_of_one_core", res.AgentCPU)
	return nil
}

func mb(bytes uint64) string { return fmt.Sprintf("%.1f", float64(bytes)/1e6) }

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

func (c Config) runPodman(ctx context.Context, archive string, res *Results) (err error) {
	p := *c.Podman
	if _, err := exec.LookPath(p.Bin); err != nil {
		return fmt.Errorf("podman: %w", err)
	}
	out, err := os.Create(filepath.Join(c.Work, "podman.log"))
	if err != nil {
		return fmt.Errorf("podman: %w", err)
	}
	defer out.Close()
	p.Output = out
	if err := p.RemovePods(ctx, podPrefix); err != nil {
		return fmt.Errorf("podman: remove a previous run's pods: %w", err)
	}
	defer func() {
		// Also when ctx has ended: a benchmark leaves nothing running.
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, p.RemovePods(cleanCtx, podPrefix))
	}()
	if err := p.Load(ctx, archive); err != nil {
		return err
	}
	dir := filepath.Join(c.Work, "podman")
	write := func(specs []PodSpec) ([]string, error) {
		paths := make([]string, len(specs))
		for i, spec := range specs {
			paths[i] = filepath.Join(dir, spec.Name+".yaml")
			if err := os.WriteFile(paths[i], spec.Manifest(), 0o644); err != nil {
				return nil, fmt.Errorf("podman: write manifest: %w", err)
			}
		}
		return paths, nil
	}
	check := func(specs []PodSpec) error {
		pods, err := p.Pods(ctx, podPrefix)
		if err != nil {
			return err
		}
		names := make([]string, len(specs))
		for i, s := range specs {
			names[i] = s.Name
		}
		return CheckRunning(pods, names)
	}

	// The first kube play on a host builds podman's pause image.
	warm := []PodSpec{c.pod("warmup")}
	paths, err := write(warm)
	if err != nil {
		return err
	}
	if _, err := p.Play(ctx, paths[0]); err != nil {
		return fmt.Errorf("podman warm-up: %w", err)
	}
	if err := errors.Join(check(warm), p.RemovePods(ctx, podPrefix)); err != nil {
		return fmt.Errorf("podman warm-up: %w", err)
	}

	seq := c.pods("seq", c.Sequential)
	if paths, err = write(seq); err != nil {
		return err
	}
	var lat []time.Duration
	for i, path := range paths {
		took, err := p.Play(ctx, path)
		if err != nil {
			res.PodmanSeq = res.record("podman-seq", lat)
			return err
		}
		if err := check(seq[i : i+1]); err != nil {
			return err
		}
		lat = append(lat, took)
	}
	res.PodmanSeq = res.record("podman-seq", lat)
	c.Log.Info("podman: started pods one at a time", "summary", res.PodmanSeq)
	if err := p.RemovePods(ctx, podPrefix); err != nil {
		return err
	}

	burst := c.pods("burst", c.Burst)
	if paths, err = write(burst); err != nil {
		return err
	}
	lat = make([]time.Duration, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() { lat[i], errs[i] = p.Play(ctx, path) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := check(burst); err != nil {
		return err
	}
	res.PodmanBurst = res.record("podman-burst", lat)
	c.Log.Info("podman: started pods at once", "summary", res.PodmanBurst)
	return p.RemovePods(ctx, podPrefix)
}
