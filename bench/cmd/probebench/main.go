// Command probebench measures what probes cost podboot's agent and how fast
// a failing liveness probe gets its container restarted (issue 14), on one
// devnode with the pod network on (in a network namespace of its own), so
// that probes reach pods at their IPs as on a board:
//
//   - agent CPU: -pods pods (busybox:1.36 running busybox httpd on 8080)
//     with one readiness probe each, every second, of one kind (exec `cat
//     /tmp/ready`, httpGet /index.html, tcpSocket 8080), Ready, then
//     podagent's utime+stime (/proc/PID/stat) over -window after -settle,
//     as a percentage of one core; the same pods without probes are the
//     baseline. Beside it, containerd's and the shims' CPU over the same
//     window, each with the children it reaped (cutime+cstime: runc, and
//     an exec probe's processes), and the probes run a second
//     (prober_probe_total): a worker whose probe outlasts its period skips
//     ticks, so a saturated node runs fewer than one a pod a second. Two
//     cores cannot run 100 execs a second: the exec round has -exec-pods.
//   - liveness failure → restarted: -restarts pods, one at a time, each
//     with a liveness probe (httpGet every second, failureThreshold 1) on
//     an endpoint of probebench's own in the node's namespace, which
//     answers 200 until told to fail that pod, then 500; from the first 500
//     answered to the API showing the pod's container running again with
//     restartCount 1 (the pod read every 10 ms). The container stops at
//     SIGTERM, so the kill does not wait out a grace period; a first restart
//     has no crash-loop back-off, as with kubelet.
//
// It needs root (containerd, the namespace), bin/devnode, bin/mkimage,
// bin/runc and bin/cni (make build). bench/probes.sh runs it.
package main

import (
	"context"
	"encoding/json"
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/bench/podbench"
	"github.com/podboot/podboot/internal/nsutil"
)

// Config is probebench's command line.
type Config struct {
	Bin, Work, Report string
	Keep              bool
	Pods              int           // probed pods in each CPU round
	ExecPods          int           // probed pods in the exec round
	Settle, Window    time.Duration // before and of the CPU window
	Restarts          int           // liveness restarts measured
	Kinds             string        // CPU rounds, comma-separated
	Timeout           time.Duration // longest wait for pods to be Ready or gone
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Bin, "bin", "bin", "directory of devnode, mkimage, runc and cni/ (make build)")
	flag.StringVar(&cfg.Work, "work", "", "scratch directory (default: a new one, removed at the end)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (devnode.log)")
	flag.StringVar(&cfg.Report, "report", "", "also write the results as markdown to this file")
	flag.IntVar(&cfg.Pods, "pods", 100, "pods (one probe each, every second) in each CPU round but exec's")
	flag.IntVar(&cfg.ExecPods, "exec-pods", 10, "pods in the exec round (two cores carry about 13 execs a second)")
	flag.DurationVar(&cfg.Settle, "settle", 10*time.Second, "wait after the pods are Ready before the CPU window")
	flag.DurationVar(&cfg.Window, "window", 60*time.Second, "the CPU window")
	flag.IntVar(&cfg.Restarts, "restarts", 20, "liveness failures → restarts measured (0: none)")
	flag.StringVar(&cfg.Kinds, "kinds", "none,httpGet,tcpSocket,exec", "CPU rounds: none (no probe, the baseline), exec, httpGet, tcpSocket")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "longest wait for a round's pods to be Ready or gone")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("probebench failed", "err", err)
		os.Exit(1)
	}
}

// probeFor is the readiness probe of a CPU round's pods, by kind. The
// timeout is wide: two cores cannot run 100 execs a second, and a probe
// that times out would measure failures, not probes; a worker whose probe
// outlasts its period skips ticks, which the probes-a-second column shows.
func probeFor(kind string) (string, error) {
	switch kind {
	case "none":
		return "", nil
	case "exec":
		return "readinessProbe: {exec: {command: [cat, /tmp/ready]}, periodSeconds: 1, timeoutSeconds: 10}", nil
	case "httpGet":
		return "readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1, timeoutSeconds: 10}", nil
	case "tcpSocket":
		return "readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1, timeoutSeconds: 10}", nil
	}
	return "", fmt.Errorf("unknown probe kind %q (none, exec, httpGet, tcpSocket)", kind)
}

// podManifest is one pod: busybox httpd on 8080 serving /tmp, a shell
// that stops at SIGTERM (as PID 1 it would ignore it), and probe.
func podManifest(name, probe string) string {
	m := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  containers:
  - name: web
    image: busybox:1.36
    args: [sh, -c, "trap 'exit 0' TERM; echo ok >/tmp/index.html; touch /tmp/ready; httpd -f -p 8080 -h /tmp & wait"]
`, name)
	if probe != "" {
		m += "    " + probe + "\n"
	}
	return m
}

// bench is one run's node and what reaches it.
type bench struct {
	cfg    Config
	log    *slog.Logger
	pods   string // the flash's pods/
	base   string // http://127.0.0.1:PORT in the node's namespace
	client *http.Client
	node   podbench.Node
}

func run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	if cfg.Bin, err = filepath.Abs(cfg.Bin); err != nil {
		return err
	}
	for _, b := range []string{"devnode", "mkimage", "runc", "cni/bridge", "cni/host-local"} {
		if _, err := os.Stat(filepath.Join(cfg.Bin, b)); err != nil {
			return fmt.Errorf("bin/%s: %w (run make build)", b, err)
		}
	}
	var kinds []string
	for _, k := range strings.Split(cfg.Kinds, ",") {
		if _, err := probeFor(k); err != nil {
			return err
		}
		kinds = append(kinds, k)
	}
	work := cfg.Work
	if work == "" {
		if work, err = os.MkdirTemp("", "probebench"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if !cfg.Keep {
		defer os.RemoveAll(work)
	}
	if work, err = filepath.Abs(work); err != nil {
		return err
	}
	flash, state := filepath.Join(work, "flash"), filepath.Join(work, "state")
	b := &bench{cfg: cfg, log: log, pods: filepath.Join(flash, "pods")}
	for _, d := range []string{b.pods, filepath.Join(flash, "images")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mk := exec.CommandContext(ctx, filepath.Join(cfg.Bin, "mkimage"), "-arch", runtime.GOARCH, "-busybox", "/bin/busybox", "-tag", "busybox:1.36", "-o", filepath.Join(flash, "images"))
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("mkimage: %w\n%s", err, out)
	}

	netns := filepath.Join(work, "netns")
	if err := nsutil.PinNewNetNS(netns); err != nil {
		return fmt.Errorf("the node's network namespace: %w", err)
	}
	// Unpinned after the power-off (deferred below, so run before).
	defer func() { err = errors.Join(err, nsutil.Unpin(netns)) }()
	if err := nsutil.Do(netns, loopbackUp); err != nil {
		return err
	}
	// Long: with 100 exec probes a second the node is saturated and the
	// API answers late.
	b.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: nsutil.Dialer(netns)}}
	// The liveness endpoint, in the node's namespace where the agent probes.
	var ln net.Listener
	if err := nsutil.Do(netns, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		return fmt.Errorf("listen in the node's namespace: %w", err)
	}
	health := newHealth()
	srv := &http.Server{Handler: health}
	go srv.Serve(ln)
	defer srv.Close()

	// The API's port: free in the new namespace, where nothing listens.
	listen := "127.0.0.1:6443"
	b.base = "http://" + listen
	devlog, err := os.Create(filepath.Join(work, "devnode.log"))
	if err != nil {
		return err
	}
	defer devlog.Close()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	node, err := podbench.StartDevnode(startCtx, podbench.DevnodeConfig{Bin: filepath.Join(cfg.Bin, "devnode"),
		Flash: flash, State: state, Listen: listen, NetNS: netns, CNIBinDir: filepath.Join(cfg.Bin, "cni"), Log: devlog})
	cancel()
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, devlog.Name())
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		return errors.Join(err, node.Stop(2*time.Minute))
	}
	b.node = podbench.Node{Proc: proc, StateDir: state, DevnodePID: node.PID()}
	defer func() {
		err = errors.Join(err, node.PowerOff(b.node, 6*time.Minute, err != nil, filepath.Join(cfg.Bin, "runc"), log))
	}()

	var res results
	for _, kind := range kinds {
		c, err := b.cpuRound(ctx, kind)
		if err != nil {
			return fmt.Errorf("CPU round %s: %w", kind, err)
		}
		log.Info("cpu", "probe", kind, "pods", c.pods, "window", c.window, "agent %", c.agent, "containerd %", c.containerd, "shims %", c.shim, "node %", c.node, "probes/s", c.rate)
		res.cpu = append(res.cpu, c)
	}
	if cfg.Restarts > 0 {
		lat, err := b.restarts(ctx, ln.Addr().(*net.TCPAddr).Port, health)
		if err != nil {
			return fmt.Errorf("liveness restarts: %w", err)
		}
		res.restart = lat
		log.Info("liveness failure → restarted", "latency", podbench.Summarize(lat))
	}
	report := res.markdown(cfg)
	fmt.Print(report)
	if cfg.Report != "" {
		return os.WriteFile(cfg.Report, []byte(report), 0o644)
	}
	return nil
}

// loopbackUp brings up lo in the calling thread's network namespace: the
// agent's API and the liveness endpoint listen on 127.0.0.1 there.
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

// cpu is one CPU round's figures, in percent of one core.
type cpu struct {
	kind             string
	pods             int
	window           time.Duration
	agent, node      float64
	containerd, shim float64 // parts of node: containerd; the shims with what they reaped (runc, exec'd processes)
	rate             float64 // probes run a second (prober_probe_total)
}

// cpuRound starts cfg.Pods (exec: cfg.ExecPods) pods with kind's probe, waits until all are
// Ready, lets them settle, reads the CPU over the window, and removes them.
func (b *bench) cpuRound(ctx context.Context, kind string) (cpu, error) {
	probe, err := probeFor(kind)
	if err != nil {
		return cpu{}, err
	}
	file := "cpu-" + strings.ToLower(kind) + ".yaml"
	var docs []string
	want := map[string]bool{}
	pods := b.cfg.Pods
	if kind == "exec" {
		pods = b.cfg.ExecPods
	}
	for i := range pods {
		name := fmt.Sprintf("cpu-%s-%d", strings.ToLower(kind), i)
		want[name] = true
		docs = append(docs, podManifest(name, probe))
	}
	if err := writeFile(filepath.Join(b.pods, file), strings.Join(docs, "---\n")); err != nil {
		return cpu{}, err
	}
	if err := b.waitPods(ctx, "every pod Ready", func(pods []corev1.Pod) bool {
		n := 0
		for _, p := range pods {
			if want[p.Name] && podReady(&p) {
				n++
			}
		}
		return n == len(want)
	}); err != nil {
		return cpu{}, err
	}
	if err := sleep(ctx, b.cfg.Settle); err != nil {
		return cpu{}, err
	}
	agent, err := b.node.Agent()
	if err != nil {
		return cpu{}, err
	}
	p0, err := b.probesRun(ctx)
	if err != nil {
		return cpu{}, err
	}
	t0, err := b.cpuTimes(agent)
	if err != nil {
		return cpu{}, err
	}
	w0 := time.Now()
	if err := sleep(ctx, b.cfg.Window); err != nil {
		return cpu{}, err
	}
	t1, err := b.cpuTimes(agent)
	if err != nil {
		return cpu{}, err
	}
	wall := time.Since(w0)
	p1, err := b.probesRun(ctx)
	if err != nil {
		return cpu{}, err
	}
	pct := func(role podbench.Role) float64 { return 100 * float64(t1[role]-t0[role]) / float64(wall) }
	c := cpu{kind: kind, pods: pods, window: wall.Round(time.Second),
		agent: pct(podbench.RoleAgent), containerd: pct(podbench.RoleContainerd), shim: pct(podbench.RoleShim),
		rate: (p1 - p0) / wall.Seconds()}
	c.node = c.agent + c.containerd + c.shim
	if err := os.Remove(filepath.Join(b.pods, file)); err != nil {
		return cpu{}, err
	}
	return c, b.waitPods(ctx, "every pod gone", func(pods []corev1.Pod) bool {
		for _, p := range pods {
			if want[p.Name] {
				return false
			}
		}
		return true
	})
}

// probesRun is the sum of prober_probe_total over every series of the
// CPU rounds' pods: the probes run so far.
func (b *bench) probesRun(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "prober_probe_total{") || !strings.Contains(line, `pod="cpu-`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		sum += v
	}
	return sum, nil
}

// cpuTimes returns the CPU time of the node's processes by role:
// podagent's utime+stime; containerd's and the shims', each with the
// children it reaped (cutime+cstime: runc, and an exec probe's processes,
// whose reaper is the shim). A shim that ends inside the window takes its
// time with it; none does here (the pods run throughout).
func (b *bench) cpuTimes(agent int) (map[podbench.Role]time.Duration, error) {
	procs, err := b.node.Processes()
	if err != nil {
		return nil, err
	}
	out := map[podbench.Role]time.Duration{}
	for _, p := range procs {
		pr, err := b.node.Proc.Proc(p.PID)
		if err != nil {
			return nil, fmt.Errorf("read cpu time of pid %d: %w", p.PID, err)
		}
		st, err := pr.Stat()
		if err != nil {
			return nil, fmt.Errorf("read cpu time of pid %d: %w", p.PID, err)
		}
		ticks := float64(st.UTime + st.STime)
		if p.Role != podbench.RoleAgent {
			ticks += float64(st.CUTime + st.CSTime)
		} else if p.PID != agent {
			continue
		}
		out[p.Role] += time.Duration(ticks / userHZ * float64(time.Second))
	}
	return out, nil
}

// userHZ is the clock tick of /proc/PID/stat's times (procfs's own
// CPUTime assumes the same).
const userHZ = 100

// restarts measures cfg.Restarts liveness failures one at a time.
func (b *bench) restarts(ctx context.Context, port int, h *health) ([]time.Duration, error) {
	var docs []string
	var names []string
	for i := range b.cfg.Restarts {
		name := fmt.Sprintf("live-%d", i)
		names = append(names, name)
		probe := fmt.Sprintf("livenessProbe: {httpGet: {host: 127.0.0.1, port: %d, path: /%s}, periodSeconds: 1, failureThreshold: 1}", port, name)
		docs = append(docs, podManifest(name, probe))
	}
	if err := writeFile(filepath.Join(b.pods, "live.yaml"), strings.Join(docs, "---\n")); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if err := b.waitPods(ctx, "every liveness pod running", func(pods []corev1.Pod) bool {
		n := 0
		for _, p := range pods {
			if cs := webStatus(&p); want[p.Name] && cs != nil && cs.State.Running != nil && podReady(&p) {
				n++
			}
		}
		return n == len(want)
	}); err != nil {
		return nil, err
	}
	// Every probe has answered 200 at least once: the workers run.
	if err := sleep(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for _, name := range names {
		h.fail(name)
		var restarted time.Time
		err := b.pollPod(ctx, name, func(p *corev1.Pod) bool {
			cs := webStatus(p)
			if cs != nil && cs.RestartCount >= 1 && cs.State.Running != nil {
				restarted = time.Now()
				return true
			}
			return false
		})
		if err != nil {
			return lat, err
		}
		// The new container's probe must pass: the endpoint is healthy again.
		h.heal(name)
		failed, ok := h.firstFailure(name)
		if !ok {
			return lat, fmt.Errorf("%s restarted without a failing probe", name)
		}
		lat = append(lat, restarted.Sub(failed))
		b.log.Info("restarted", "pod", name, "after", restarted.Sub(failed))
	}
	if err := os.Remove(filepath.Join(b.pods, "live.yaml")); err != nil {
		return lat, err
	}
	return lat, b.waitPods(ctx, "every liveness pod gone", func(pods []corev1.Pod) bool {
		for _, p := range pods {
			if want[p.Name] {
				return false
			}
		}
		return true
	})
}

// health answers GET /NAME with 200, or 500 once NAME is failing, and
// remembers when it first answered 500 for each.
type health struct {
	mu      sync.Mutex
	failing map[string]bool
	first   map[string]time.Time
}

func newHealth() *health {
	return &health{failing: map[string]bool{}, first: map[string]time.Time{}}
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	h.mu.Lock()
	failing := h.failing[name]
	if failing {
		if _, ok := h.first[name]; !ok {
			h.first[name] = time.Now()
		}
	}
	h.mu.Unlock()
	if failing {
		http.Error(w, "failing", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (h *health) fail(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing[name] = true
}

func (h *health) heal(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing[name] = false
}

func (h *health) firstFailure(name string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.first[name]
	return t, ok
}

// waitPods lists the pods every 200 ms until cond holds.
func (b *bench) waitPods(ctx context.Context, what string, cond func([]corev1.Pod) bool) error {
	deadline := time.Now().Add(b.cfg.Timeout)
	for {
		var l corev1.PodList
		if err := b.get(ctx, "/api/v1/pods", &l); err == nil && cond(l.Items) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, b.cfg.Timeout)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// pollPod reads one pod every 10 ms until cond holds.
func (b *bench) pollPod(ctx context.Context, name string, cond func(*corev1.Pod) bool) error {
	deadline := time.Now().Add(b.cfg.Timeout)
	for {
		var p corev1.Pod
		if err := b.get(ctx, "/api/v1/namespaces/default/pods/"+name, &p); err == nil && cond(&p) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s: not restarted within %s", name, b.cfg.Timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

func (b *bench) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func webStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == "web" {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// writeFile writes a manifest beside its place and renames it in, so the
// agent never reads half of it.
func writeFile(path, content string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// results are the run's figures.
type results struct {
	cpu     []cpu
	restart []time.Duration
}

func (r results) markdown(cfg Config) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| probes (one per pod, every second) | pods | probes run a second | podagent CPU, %% of one core | containerd | shims (+ runc, exec'd) | node |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range r.cpu {
		label := c.kind
		if label == "none" {
			label = "none (baseline)"
		}
		fmt.Fprintf(&sb, "| %s | %d | %.1f | %.2f %% | %.1f %% | %.1f %% | %.1f %% |\n", label, c.pods, c.rate, c.agent, c.containerd, c.shim, c.node)
	}
	if len(r.cpu) > 0 {
		fmt.Fprintf(&sb, "\nwindow %s after %s of settling\n", r.cpu[0].window, cfg.Settle)
	}
	if len(r.restart) > 0 {
		s := podbench.Summarize(r.restart)
		fmt.Fprintf(&sb, "\n| liveness failure → container running again | n | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: |\n| httpGet, periodSeconds 1, failureThreshold 1 | %d | %s | %s | %s |\n",
			s.N, podbench.FormatDuration(s.P50), podbench.FormatDuration(s.P99), podbench.FormatDuration(s.Max))
	}
	return sb.String()
}
