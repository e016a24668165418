// Command soak runs a podboot node (bin/devnode) with 20 churning pods
// for a long time and samples every minute what a leak would grow: the
// agent's RSS, goroutines, threads and fds, containerd's RSS and fds, the
// shims, the state tmpfs and its logs, and the mounts, cgroups and veths
// the node holds; then it judges whether any series grows without bound
// (package bench/soak). With -writes it instead measures what the node's
// processes write to its state directory at rest (/proc/PID/io).
//
// It needs root and make build's binaries; bench/soak.sh runs it.
// Exit status: 0 when every series is flat, 3 when one grows, 1 on any
// other failure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/bench/podbench"
	"github.com/podboot/podboot/bench/soak"
)

type options struct {
	bin, work, report, jsonOut string
	keep                       bool
	writes                     bool
	writesPods                 int
	settle, window             time.Duration
	cfg                        soak.Config
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory of devnode, mkimage, runc and cni/ (make build)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new one under $TMPDIR, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (devnode.log, manifests)")
	flag.StringVar(&o.report, "report", "", "also write the report as markdown to this file")
	flag.StringVar(&o.jsonOut, "json", "", "also write the report, every sample included, as JSON to this file")
	flag.StringVar(&o.cfg.Busybox, "busybox", "/bin/busybox", "static busybox for the image")
	flag.DurationVar(&o.cfg.Duration, "duration", 30*time.Minute, "how long to sample after every pod has started")
	flag.DurationVar(&o.cfg.Interval, "interval", time.Minute, "sample every")
	flag.DurationVar(&o.cfg.EditEvery, "edit-every", time.Minute, "edit the replaced pods' manifests every")
	flag.DurationVar(&o.cfg.WarmUp, "warm-up", 5*time.Minute, "samples before this are not judged")
	flag.IntVar(&o.cfg.Mix.Steady, "steady", soak.DefaultMix().Steady, "steady pods")
	flag.IntVar(&o.cfg.Mix.Probed, "probed", soak.DefaultMix().Probed, "steady pods with an exec readiness probe every 10 s")
	flag.IntVar(&o.cfg.Mix.CrashLoop, "crashloop", soak.DefaultMix().CrashLoop, "crash-looping pods")
	flag.IntVar(&o.cfg.Mix.Replaced, "replaced", soak.DefaultMix().Replaced, "pods replaced by a manifest edit every -edit-every")
	flag.IntVar(&o.cfg.Mix.Logger, "logger", soak.DefaultMix().Logger, "pods logging 1 MiB a minute")
	flag.DurationVar(&o.cfg.StartTimeout, "start-timeout", 5*time.Minute, "longest wait for the node and its pods to start")
	flag.DurationVar(&o.cfg.PowerOffTimeout, "power-off-timeout", 6*time.Minute, "longest wait for devnode's graceful power-off before its leftovers are swept")
	flag.BoolVar(&o.writes, "writes", false, "measure the state directory's writes at rest instead of soaking")
	flag.IntVar(&o.writesPods, "writes-pods", 10, "-writes: steady pods running")
	flag.DurationVar(&o.settle, "writes-settle", time.Minute, "-writes: wait after the pods run before the window")
	flag.DurationVar(&o.window, "writes-window", 10*time.Minute, "-writes: the window at rest")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, o, log)
	var grows growsError
	switch {
	case errors.As(err, &grows):
		log.Error("soak", "err", err)
		os.Exit(3)
	case err != nil:
		log.Error("soak", "err", err)
		os.Exit(1)
	}
}

// growsError says which series grew.
type growsError []string

func (g growsError) Error() string { return "series grow without bound: " + strings.Join(g, ", ") }

func run(ctx context.Context, o options, log *slog.Logger) error {
	c := o.cfg
	c.Log = log
	c.Arch = runtime.GOARCH
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return fmt.Errorf("resolve -bin %q: %w", o.bin, err)
	}
	c.Devnode, c.Mkimage, c.Runc, c.CNIBinDir = filepath.Join(bin, "devnode"), filepath.Join(bin, "mkimage"), filepath.Join(bin, "runc"), filepath.Join(bin, "cni")
	// The node listens in a network namespace of its own: any port is
	// free there.
	c.Listen = "127.0.0.1:8080"
	if c.Work = o.work; c.Work == "" {
		if c.Work, err = os.MkdirTemp("", "soak-"); err != nil {
			return fmt.Errorf("make scratch directory: %w", err)
		}
	}
	if !o.keep {
		defer os.RemoveAll(c.Work)
	}
	if o.writes {
		return runWrites(ctx, o, c)
	}
	c.OnSample = func(s soak.Sample) {
		v := s.Values
		log.Info("sample", "at", s.At.Round(time.Second),
			"agent_rss_mb", fmt.Sprintf("%.1f", v[soak.AgentRSS]/1e6), "goroutines", v[soak.AgentGoroutines], "agent_fds", v[soak.AgentFDs],
			"containerd_rss_mb", fmt.Sprintf("%.1f", v[soak.ContainerdRSS]/1e6), "tmpfs_mb", fmt.Sprintf("%.1f", v[soak.StateTmpfs]/1e6),
			"mounts", v[soak.Mounts], "cgroups", v[soak.Cgroups], "veths", v[soak.Veths], "running", v[soak.PodsRunning], "restarts", v[soak.Restarts])
	}
	rep, runErr := soak.Run(ctx, c)
	var md strings.Builder
	fmt.Fprintf(&md, "%s\n\n", machine(rep.Started))
	if err := soak.WriteMarkdown(&md, rep); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		fmt.Fprintf(&md, "\nThe run failed: %v\n", runErr)
	}
	if err := emit(o, md.String(), rep); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return runErr
	}
	var grows growsError
	for _, v := range rep.Growing() {
		grows = append(grows, v.Metric)
		log.Error("grows", "why", v.Why)
	}
	if len(grows) > 0 {
		return grows
	}
	return nil
}

func runWrites(ctx context.Context, o options, c soak.Config) error {
	started := time.Now()
	rep, runErr := soak.MeasureWrites(ctx, c, o.writesPods, o.settle, o.window)
	var md strings.Builder
	fmt.Fprintf(&md, "%s\n\n", machine(started))
	fmt.Fprintf(&md, "devnode with %d steady pods, state directory on disk, at rest for %s (after the pods ran and %s more); /proc/PID/io, per hour:\n\n", rep.Pods, rep.Window, o.settle)
	md.WriteString("| process | written by syscalls (wchar) | to the block layer (write_bytes) | write calls |\n| --- | ---: | ---: | ---: |\n")
	for _, role := range []podbench.Role{podbench.RoleAgent, podbench.RoleContainerd, podbench.RoleShim} {
		io, ok := rep.ByRole[role]
		if !ok {
			continue
		}
		fmt.Fprintf(&md, "| %s | %.0f B/h | %.0f B/h | %.0f /h |\n", role, rep.PerHour(io.WChar), rep.PerHour(io.WriteBytes), rep.PerHour(io.SyscW))
	}
	if runErr != nil {
		fmt.Fprintf(&md, "\nThe run failed: %v\n", runErr)
	}
	return errors.Join(runErr, emit(o, md.String(), rep))
}

// emit prints the markdown and writes it to -report, and the report to
// -json.
func emit(o options, md string, rep any) error {
	io.WriteString(os.Stdout, md)
	if o.report != "" {
		if err := os.WriteFile(o.report, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if o.jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		if err := os.WriteFile(o.jsonOut, data, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// machine is a line saying where and when it ran.
func machine(at time.Time) string {
	kernel := "unknown kernel"
	if v, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "kernel " + strings.TrimSpace(string(v))
	}
	osName := "unknown OS"
	if v, err := os.ReadFile("/etc/debian_version"); err == nil {
		osName = "Debian " + strings.TrimSpace(string(v))
	}
	load := ""
	if v, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average at the end " + strings.Join(strings.Fields(string(v))[:3], " ")
	}
	return fmt.Sprintf("Started %s UTC; %d cores, %s, %s%s.", at.UTC().Format("2006-01-02 15:04"), runtime.NumCPU(), osName, kernel, load)
}
