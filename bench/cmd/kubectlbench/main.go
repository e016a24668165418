// Command kubectlbench measures the board's API as the stock kubectl uses
// it, on a devnode: `kubectl apply -f` of a new pod to Running beside a
// manifest file written to the flash to Running (the same node, the two
// alternated); get and list latency with 100 pods, through kubectl (the
// whole process) and through a plain HTTP client; and the exec round trip
// `kubectl exec X -- true` beside `podman exec C true`, alternated in the
// same run. It needs root, kubectl, and bin/devnode, bin/mkimage and
// bin/runc (make build); podman for the exec comparison. bench/writes.sh
// runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/bench/podbench"
)

// Config is kubectlbench's command line.
type Config struct {
	Bin, Work, Report string
	Keep              bool
	Runs              int // apply/file pairs, kubectl get/exec runs
	HTTPRuns          int // plain HTTP requests per kind
	Pods              int // pods present while get/list is measured
	Podman            bool
	PodmanBin         string
	PodTimeout        time.Duration
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Bin, "bin", "bin", "directory of devnode, mkimage and runc (make build)")
	flag.StringVar(&cfg.Work, "work", "", "scratch directory (default: a new one, removed at the end)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (devnode.log, manifests)")
	flag.StringVar(&cfg.Report, "report", "", "also write the results as markdown to this file")
	flag.IntVar(&cfg.Runs, "runs", 20, "apply/manifest pairs, and kubectl get and exec runs")
	flag.IntVar(&cfg.HTTPRuns, "http-runs", 200, "plain HTTP requests of each kind")
	flag.IntVar(&cfg.Pods, "pods", 100, "pods running while get and list are measured")
	flag.BoolVar(&cfg.Podman, "podman", true, "measure podman exec beside kubectl exec")
	flag.StringVar(&cfg.PodmanBin, "podman-bin", "podman", "podman binary")
	flag.DurationVar(&cfg.PodTimeout, "pod-timeout", 3*time.Minute, "longest wait for pods to run or go")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("kubectlbench failed", "err", err)
		os.Exit(1)
	}
}

// bench is one run's node and the tools that reach it.
type bench struct {
	cfg         Config
	log         *slog.Logger
	flash, kube string
	base        string // http://127.0.0.1:PORT
	tracker     *podbench.Tracker
	client      *http.Client
}

func run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	if cfg.Bin, err = filepath.Abs(cfg.Bin); err != nil {
		return err
	}
	work := cfg.Work
	if work == "" {
		if work, err = os.MkdirTemp("", "kubectlbench"); err != nil {
			return err
		}
	}
	if !cfg.Keep {
		defer os.RemoveAll(work)
	}
	b := &bench{cfg: cfg, log: log, flash: filepath.Join(work, "flash"), kube: filepath.Join(work, "kube"), client: &http.Client{Timeout: 30 * time.Second}}
	for _, d := range []string{filepath.Join(b.flash, "pods"), filepath.Join(b.flash, "images"), filepath.Join(work, "files")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mk := exec.CommandContext(ctx, filepath.Join(cfg.Bin, "mkimage"), "-arch", runtime.GOARCH, "-busybox", "/bin/busybox", "-o", filepath.Join(b.flash, "images"))
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("mkimage: %w\n%s", err, out)
	}
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	b.base = "http://" + listen
	devlog, err := os.Create(filepath.Join(work, "devnode.log"))
	if err != nil {
		return err
	}
	defer devlog.Close()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	node, err := podbench.StartDevnode(startCtx, podbench.DevnodeConfig{Bin: filepath.Join(cfg.Bin, "devnode"),
		Flash: b.flash, State: filepath.Join(work, "state"), Listen: listen, Log: devlog})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := node.Stop(6 * time.Minute); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	trackCtx, stopTracking := context.WithCancel(ctx)
	defer stopTracking()
	if b.tracker, err = podbench.Track(trackCtx, b.base, b.client); err != nil {
		return err
	}

	var report strings.Builder
	fmt.Fprintf(&report, "kubectlbench: %d runs, %d plain HTTP requests per kind, %d pods for get/list; %s, %d CPUs\n\n", cfg.Runs, cfg.HTTPRuns, cfg.Pods, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	fmt.Fprintf(&report, "| what | n | p50 | p99 | max |\n| --- | --- | --- | --- | --- |\n")
	row := func(what string, samples []time.Duration) {
		if len(samples) == 0 {
			return
		}
		s := podbench.Summarize(samples)
		line := fmt.Sprintf("| %s | %d | %s | %s | %s |\n", what, s.N, podbench.FormatDuration(s.P50), podbench.FormatDuration(s.P99), podbench.FormatDuration(s.Max))
		report.WriteString(line)
		log.Info("result", "what", what, "summary", s.String())
	}
	var errs []error
	step := func(name string, f func() error) {
		if err := f(); err != nil {
			log.Error("step failed", "step", name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			fmt.Fprintf(&report, "| %s | failed: %s | | | |\n", name, strings.ReplaceAll(firstLine(err.Error()), "|", "/"))
		}
	}
	step("kubectl apply -f to Running", func() error {
		apply, file, err := b.startLatency(ctx, filepath.Join(work, "files"))
		row("manifest file on the flash to Running", file)
		row("`kubectl apply -f` of a new pod to Running", apply)
		return err
	})
	step("get and list", func() error { return b.getList(ctx, row) })
	step("exec round trip", func() error { return b.exec(ctx, row) })
	if len(errs) > 0 {
		report.WriteString("\nerrors:\n")
		for _, e := range errs {
			fmt.Fprintf(&report, "- %s\n", e)
		}
	}
	fmt.Print(report.String())
	if cfg.Report != "" {
		if werr := os.WriteFile(cfg.Report, []byte(report.String()), 0o644); werr != nil {
			errs = append(errs, werr)
		}
	}
	return errors.Join(errs...)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// podYAML is a one-container pod that stops at once on SIGTERM (a shell
// trapping it), so deleting it between runs does not wait out a grace
// period.
func podYAML(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`, name)
}

// kubectl runs the stock kubectl against the node and returns how long
// the whole process took.
func (b *bench) kubectl(ctx context.Context, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--server", b.base, "--cache-dir", b.kube}, args...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return took, nil
}

// startLatency alternates a pod created by `kubectl apply -f` and one
// written as a manifest file to the flash, each timed from the command's
// start (the file's rename) to the watch showing every container running,
// and removed before the next. A failing kubectl stops only its half.
func (b *bench) startLatency(ctx context.Context, files string) (apply, file []time.Duration, err error) {
	// Discovery and OpenAPI are cached by the first kubectl run, as a
	// person's second command finds them.
	if _, err := b.kubectl(ctx, "get", "pods"); err != nil {
		return nil, nil, err
	}
	var applyErr error
	for i := range b.cfg.Runs {
		if applyErr == nil {
			var took time.Duration
			took, applyErr = b.applyOnce(ctx, files, fmt.Sprintf("apply-%d", i))
			if applyErr == nil {
				apply = append(apply, took)
			}
		}
		took, err := b.fileOnce(ctx, fmt.Sprintf("file-%d", i))
		if err != nil {
			return apply, file, errors.Join(applyErr, err)
		}
		file = append(file, took)
	}
	return apply, file, applyErr
}

func (b *bench) applyOnce(ctx context.Context, files, name string) (time.Duration, error) {
	path := filepath.Join(files, name+".yaml")
	if err := os.WriteFile(path, []byte(podYAML(name)), 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := b.kubectl(ctx, "apply", "-f", path); err != nil {
		return 0, err
	}
	t, err := b.waitRunning(ctx, name)
	if err != nil {
		return 0, err
	}
	_, err = b.kubectl(ctx, "delete", "-f", path)
	return t.Running.Sub(start), err
}

func (b *bench) fileOnce(ctx context.Context, name string) (time.Duration, error) {
	final := filepath.Join(b.flash, "pods", name+".yaml")
	tmp := filepath.Join(b.flash, "pods", "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(podYAML(name)), 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := os.Rename(tmp, final); err != nil {
		return 0, err
	}
	t, err := b.waitRunning(ctx, name)
	if err != nil {
		return 0, err
	}
	if err := os.Remove(final); err != nil {
		return 0, err
	}
	return t.Running.Sub(start), b.waitGone(ctx, name)
}

func (b *bench) waitRunning(ctx context.Context, name string) (podbench.PodTimes, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PodTimeout)
	defer cancel()
	return b.tracker.WaitRunning(ctx, name)
}

func (b *bench) waitGone(ctx context.Context, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PodTimeout)
	defer cancel()
	return b.tracker.WaitGone(ctx, names)
}

// tableAccept is what kubectl get asks for: a server-side Table.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// getList starts cfg.Pods pods from one manifest file and times get and
// list: the stock kubectl as a whole process, and plain HTTP requests on
// one kept-alive connection (the API's own latency).
func (b *bench) getList(ctx context.Context, row func(string, []time.Duration)) error {
	var all strings.Builder
	names := make([]string, b.cfg.Pods)
	for i := range names {
		names[i] = fmt.Sprintf("many-%03d", i)
		all.WriteString("---\n" + podYAML(names[i]))
	}
	path := filepath.Join(b.flash, "pods", "many.yaml")
	if err := os.WriteFile(path+".tmp", []byte(all.String()), 0o644); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := b.waitRunning(ctx, n); err != nil {
			return err
		}
	}
	one := names[len(names)/2]
	for _, k := range []struct {
		what string
		args []string
	}{
		{fmt.Sprintf("`kubectl get po` (%d pods), whole process", b.cfg.Pods), []string{"get", "po"}},
		{"`kubectl get po " + one + "`, whole process", []string{"get", "po", one}},
	} {
		var samples []time.Duration
		for range b.cfg.Runs {
			took, err := b.kubectl(ctx, k.args...)
			if err != nil {
				return err
			}
			samples = append(samples, took)
		}
		row(k.what, samples)
	}
	for _, k := range []struct{ what, path, accept string }{
		{fmt.Sprintf("GET pods, list of %d, JSON", b.cfg.Pods), "/api/v1/namespaces/default/pods", "application/json"},
		{fmt.Sprintf("GET pods, list of %d, Table (as kubectl get)", b.cfg.Pods), "/api/v1/namespaces/default/pods?limit=500", tableAccept},
		{"GET one pod, JSON", "/api/v1/namespaces/default/pods/" + one, "application/json"},
	} {
		samples, err := b.httpGet(ctx, k.path, k.accept)
		if err != nil {
			return err
		}
		row(k.what+", plain HTTP", samples)
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return b.waitGone(ctx, names...)
}

func (b *bench) httpGet(ctx context.Context, path, accept string) ([]time.Duration, error) {
	var samples []time.Duration
	for range b.cfg.HTTPRuns {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		start := time.Now()
		resp, err := b.client.Do(req)
		if err != nil {
			return samples, fmt.Errorf("GET %s: %w", path, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil || resp.StatusCode != http.StatusOK {
			return samples, fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		samples = append(samples, took)
	}
	return samples, nil
}

// exec times `kubectl exec X -- true` against a pod of the node and, in
// the same loop, `podman exec C true` against a podman container of the
// same image and runtime (podman run -d, network none), one after the
// other so a drift of the machine's speed hits both.
func (b *bench) exec(ctx context.Context, row func(string, []time.Duration)) error {
	path := filepath.Join(b.flash, "pods", "exec.yaml")
	if err := os.WriteFile(path, []byte(podYAML("exec-target")), 0o644); err != nil {
		return err
	}
	if _, err := b.waitRunning(ctx, "exec-target"); err != nil {
		return err
	}
	pm, err := b.podman(ctx)
	if err != nil {
		return err
	}
	defer pm.cleanup()
	var kube, pod []time.Duration
	var kubeErr error
	for range b.cfg.Runs {
		if kubeErr == nil {
			var took time.Duration
			if took, kubeErr = b.kubectl(ctx, "exec", "exec-target", "--", "true"); kubeErr == nil {
				kube = append(kube, took)
			}
		}
		if pm.run != nil {
			took, err := pm.run(ctx)
			if err != nil {
				return errors.Join(kubeErr, err)
			}
			pod = append(pod, took)
		}
	}
	row("`kubectl exec exec-target -- true`, whole process", kube)
	row("`podman exec` (same image, runc) `-- true`, whole process", pod)
	return kubeErr
}

// podmanExec is a podman container to exec into; run is nil without
// podman.
type podmanExec struct {
	run     func(context.Context) (time.Duration, error)
	cleanup func()
}

func (b *bench) podman(ctx context.Context) (podmanExec, error) {
	none := podmanExec{cleanup: func() {}}
	if !b.cfg.Podman {
		return none, nil
	}
	if _, err := exec.LookPath(b.cfg.PodmanBin); err != nil {
		b.log.Warn("no podman: kubectl exec measured alone", "err", err)
		return none, nil
	}
	p := podbench.Podman{Bin: b.cfg.PodmanBin, Runtime: filepath.Join(b.cfg.Bin, "runc")}
	if err := p.Load(ctx, filepath.Join(b.flash, "images", "busybox_latest.tar")); err != nil {
		return none, err
	}
	const name = "kubectlbench-exec"
	podman := func(args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, p.Bin, append([]string{"--runtime", p.Runtime}, args...)...)
	}
	_ = podman("rm", "-f", "-t", "0", name).Run()
	if out, err := podman("run", "-d", "--name", name, "--network", "none", "busybox:1.36", "sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait").CombinedOutput(); err != nil {
		return none, fmt.Errorf("podman run %s: %w: %s", name, err, out)
	}
	return podmanExec{
		run: func(ctx context.Context) (time.Duration, error) {
			start := time.Now()
			out, err := podman("exec", name, "true").CombinedOutput()
			took := time.Since(start)
			if err != nil {
				return took, fmt.Errorf("podman exec %s true: %w: %s", name, err, out)
			}
			return took, nil
		},
		cleanup: func() { _ = podman("rm", "-f", "-t", "0", name).Run() },
	}, nil
}
