package podbench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/procfs"
	"github.com/vishvananda/netlink"

	"github.com/podboot/podboot/internal/nsutil"
)

// runPodboot boots a devnode on the flash and runs podboot's rounds: warm-up,
// memory at 0 pods, pods one at a time (memory on the way, then CPU with all
// of them idle), pods at once. The node is powered off, and swept if need
// be, whatever happens.
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
	dc := DevnodeConfig{Bin: c.Devnode, Flash: flash, State: state, Listen: c.Listen, Log: logFile}
	client := &http.Client{}
	if c.CNIBinDir != "" {
		dc.NetNS, dc.CNIBinDir = filepath.Join(c.Work, "netns"), c.CNIBinDir
		if err := nsutil.PinNewNetNS(dc.NetNS); err != nil {
			return fmt.Errorf("podboot: the node's network namespace: %w", err)
		}
		// Unpinned after the power-off (deferred below, so run before).
		defer func() { err = errors.Join(err, nsutil.Unpin(dc.NetNS)) }()
		if err := nsutil.Do(dc.NetNS, loopbackUp); err != nil {
			return fmt.Errorf("podboot: %w", err)
		}
		client.Transport = &http.Transport{DialContext: nsutil.Dialer(dc.NetNS)}
	}
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c.Log.Info("starting devnode", "state", state, "listen", c.Listen, "log", logPath, "pod network", c.CNIBinDir != "")
	d, err := StartDevnode(startCtx, dc)
	if err != nil {
		return fmt.Errorf("podboot (log: %s): %w", logPath, err)
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		return errors.Join(fmt.Errorf("podboot: open /proc: %w", err), d.Stop(2*time.Minute))
	}
	node := Node{Proc: proc, StateDir: state, DevnodePID: d.PID()}
	defer func() {
		err = errors.Join(err, d.PowerOff(node, c.PowerOffTimeout, err != nil, c.Runc, c.Log))
	}()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	tr, err := Track(watchCtx, "http://"+c.Listen, client)
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

// loopbackUp brings up lo in the calling thread's network namespace: the
// agent's API listens on 127.0.0.1 there.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("loopback up in the node's network namespace: %w", err)
	}
	return nil
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
