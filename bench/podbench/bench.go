package podbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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
	// CNIBinDir turns the node's pod network on (devnode --cni-bin-dir):
	// devnode then runs in a network namespace the benchmark makes, so
	// the host's network is left alone. Empty: loopback-only pods.
	CNIBinDir string

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
