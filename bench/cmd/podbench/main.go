// Command podbench measures podboot's pod start latency against podman kube
// play, the memory of the agent, containerd and the shims, and the agent's
// idle CPU. It needs root, bin/devnode and bin/mkimage (make build), and
// podman for the comparison. `make bench` runs it through bench/run.sh.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/bench/podbench"
)

type options struct {
	bin, work, listen, report string
	jsonOut                   string
	keep, podNetwork          bool
	memoryAt                  string
	podman                    bool
	podmanBin, runtime, net   string
	cfg                       podbench.Config

	resources bool // the resource benchmarks instead of the start benchmark
	cpuLimits string
	res       podbench.ResourcesConfig
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory of devnode, mkimage and runc (make build)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new one under $TMPDIR, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (devnode.log, manifests)")
	flag.StringVar(&o.listen, "listen", "", "the agent's API address (default: a free port on 127.0.0.1)")
	flag.StringVar(&o.report, "report", "", "also write the results as markdown to this file")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results, raw latencies included, as JSON to this file")
	flag.StringVar(&o.cfg.Busybox, "busybox", "/bin/busybox", "static busybox for the image")
	flag.StringVar(&o.cfg.Arch, "arch", runtime.GOARCH, "image architecture")
	flag.IntVar(&o.cfg.Sequential, "seq", 50, "pods started one at a time")
	flag.IntVar(&o.cfg.Burst, "burst", 20, "pods started at once")
	flag.StringVar(&o.memoryAt, "memory-at", "0,10,50", "running pod counts of the one-at-a-time round to measure memory at")
	flag.DurationVar(&o.cfg.CPUWindow, "cpu-window", time.Minute, "how long to measure the agent's CPU with the one-at-a-time round's pods idle (0: not at all)")
	flag.DurationVar(&o.cfg.Settle, "settle", 5*time.Second, "wait before each memory and CPU figure")
	flag.DurationVar(&o.cfg.PodTimeout, "pod-timeout", time.Minute, "longest wait for a pod to run or a round's pods to go")
	flag.DurationVar(&o.cfg.PowerOffTimeout, "power-off-timeout", 6*time.Minute, "longest wait for devnode's graceful power-off before its leftovers are swept")
	flag.BoolVar(&o.cfg.Podboot, "podboot", true, "run podboot's rounds")
	flag.BoolVar(&o.podNetwork, "pod-network", false, "podboot's pods on the pod network (BIN/cni's plugins; devnode runs in a network namespace of its own); default: loopback only")
	flag.BoolVar(&o.podman, "podman", true, "run podman kube play's rounds")
	flag.StringVar(&o.podmanBin, "podman-bin", "podman", "podman binary")
	flag.StringVar(&o.runtime, "runtime", "", "OCI runtime for podman (default: BIN/runc, podboot's own)")
	flag.StringVar(&o.net, "network", "none", "podman kube play --network")
	flag.BoolVar(&o.resources, "resources", false, "run the resource benchmarks (CPU limit accuracy, OOM time to status, metrics cost) instead of the start benchmark")
	flag.StringVar(&o.cpuLimits, "cpu-limits", "100m,250m,500m,1", "-resources: CPU limits to measure, one pod at a time")
	flag.DurationVar(&o.res.CPUWarmUp, "cpu-warmup", 2*time.Second, "-resources: from the busy pod running to its first window")
	flag.DurationVar(&o.res.CPUWindow, "cpu-sample", 10*time.Second, "-resources: one CPU share window")
	flag.IntVar(&o.res.CPUSamples, "cpu-samples", 3, "-resources: consecutive windows per CPU limit")
	flag.IntVar(&o.res.OOMRuns, "oom-runs", 10, "-resources: OOM pods, one at a time (0: none)")
	flag.StringVar(&o.res.OOMLimit, "oom-limit", "32Mi", "-resources: memory limit of the OOM pod (it asks for 64M at once)")
	flag.IntVar(&o.res.MetricsPods, "metrics-pods", 50, "-resources: idle pods running while the metrics cost is measured (0: not measured)")
	flag.DurationVar(&o.res.MetricsWindow, "metrics-window", time.Minute, "-resources: each of the quiet and the scraped window")
	flag.DurationVar(&o.res.ScrapeEvery, "scrape-every", 5*time.Second, "-resources: scrape interval of /metrics and /metrics/cadvisor")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runFn := run
	if o.resources {
		runFn = runResources
	}
	if err := runFn(ctx, o, log); err != nil {
		log.Error("podbench", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	cfg := o.cfg
	cfg.Log = log
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return fmt.Errorf("resolve -bin %q: %w", o.bin, err)
	}
	cfg.Devnode, cfg.Mkimage, cfg.Runc = filepath.Join(bin, "devnode"), filepath.Join(bin, "mkimage"), filepath.Join(bin, "runc")
	if o.podNetwork {
		cfg.CNIBinDir = filepath.Join(bin, "cni")
	}
	if cfg.MemoryAt, err = parseCounts(o.memoryAt, cfg.Sequential); err != nil {
		return err
	}
	if o.podman {
		rt := o.runtime
		if rt == "" {
			rt = filepath.Join(bin, "runc")
		}
		cfg.Podman = &podbench.Podman{Bin: o.podmanBin, Runtime: rt, Network: o.net}
	}
	if cfg.Listen, err = o.listenAddr(); err != nil {
		return err
	}
	if cfg.Work, err = o.workDir(); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(cfg.Work)
	}

	res, runErr := podbench.Run(ctx, cfg)
	return o.writeResults(res, runErr)
}

// listenAddr is -listen, or a free loopback port.
func (o options) listenAddr() (string, error) {
	if o.listen != "" {
		return o.listen, nil
	}
	return freeLoopbackPort()
}

// workDir is -work, or a new scratch directory.
func (o options) workDir() (string, error) {
	if o.work != "" {
		return o.work, nil
	}
	dir, err := os.MkdirTemp("", "podbench-")
	if err != nil {
		return "", fmt.Errorf("make scratch directory: %w", err)
	}
	return dir, nil
}

// markdownWriter is a benchmark's results as tables.
type markdownWriter interface {
	WriteMarkdown(w io.Writer, m podbench.Machine)
}

// writeResults prints the tables, and writes them to -report and the
// results to -json; runErr is reported with them and returned.
func (o options) writeResults(res markdownWriter, runErr error) error {
	var md bytes.Buffer
	res.WriteMarkdown(&md, machine())
	if runErr != nil {
		fmt.Fprintf(&md, "\nThe run failed: %v\n", runErr)
	}
	os.Stdout.Write(md.Bytes())
	if o.report != "" {
		if err := os.WriteFile(o.report, md.Bytes(), 0o644); err != nil {
			return errors.Join(runErr, fmt.Errorf("write report: %w", err))
		}
	}
	if o.jsonOut != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return errors.Join(runErr, fmt.Errorf("encode results: %w", err))
		}
		if err := os.WriteFile(o.jsonOut, data, 0o644); err != nil {
			return errors.Join(runErr, fmt.Errorf("write results: %w", err))
		}
	}
	return runErr
}

// freeLoopbackPort picks a port nothing listens on now.
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func machine() podbench.Machine {
	m := podbench.Machine{CPUs: runtime.NumCPU(), OS: "unknown OS", Kernel: "unknown"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if v, err := os.ReadFile("/etc/debian_version"); err == nil {
		m.OS = "Debian " + strings.TrimSpace(string(v))
	}
	return m
}

// parseCounts reads -memory-at: comma-separated pod counts from 0 to most.
func parseCounts(list string, most int) ([]int, error) {
	var counts []int
	for _, field := range strings.Split(list, ",") {
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		n, err := strconv.Atoi(field)
		if err != nil || n < 0 || n > most {
			return nil, fmt.Errorf("-memory-at %q: %q is not a pod count from 0 to -seq (%d)", list, field, most)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// runResources runs the resource benchmarks with -bin, -work, -listen,
// -report and -json as the start benchmark uses them.
func runResources(ctx context.Context, o options, log *slog.Logger) error {
	cfg := o.res
	cfg.Log, cfg.Busybox, cfg.Arch = log, o.cfg.Busybox, o.cfg.Arch
	cfg.Settle, cfg.PodTimeout, cfg.PowerOffTimeout = o.cfg.Settle, o.cfg.PodTimeout, o.cfg.PowerOffTimeout
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return fmt.Errorf("resolve -bin %q: %w", o.bin, err)
	}
	cfg.Devnode, cfg.Mkimage, cfg.Runc = filepath.Join(bin, "devnode"), filepath.Join(bin, "mkimage"), filepath.Join(bin, "runc")
	if cfg.CPULimits, err = parseQuantities(o.cpuLimits); err != nil {
		return err
	}
	if cfg.Listen, err = o.listenAddr(); err != nil {
		return err
	}
	if cfg.Work, err = o.workDir(); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(cfg.Work)
	}
	res, runErr := podbench.RunResources(ctx, cfg)
	return o.writeResults(res, runErr)
}

// parseQuantities reads -cpu-limits: comma-separated CPU quantities above 0.
func parseQuantities(list string) ([]string, error) {
	var out []string
	for _, field := range strings.Split(list, ",") {
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		q, err := resource.ParseQuantity(field)
		if err != nil || q.MilliValue() <= 0 {
			return nil, fmt.Errorf("-cpu-limits %q: %q is not a CPU quantity above 0", list, field)
		}
		out = append(out, field)
	}
	return out, nil
}
