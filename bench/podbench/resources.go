package podbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/prometheus/procfs"
)

// ResourcesConfig is one run of the resource benchmarks: CPU limit
// accuracy, OOM time to status, and the agent's CPU cost of metrics
// scrapes.
type ResourcesConfig struct {
	Devnode, Mkimage, Runc string
	Busybox, Arch          string
	Work, Listen           string

	CPULimits  []string      // quantities, measured one pod at a time
	CPUWarmUp  time.Duration // from the pod running to the first window
	CPUWindow  time.Duration // one sample
	CPUSamples int           // consecutive windows per limit

	OOMRuns  int
	OOMLimit string // memory limit of the OOM pod; it asks for 64M at once

	MetricsPods   int
	MetricsWindow time.Duration // each of the quiet and the scraped window
	ScrapeEvery   time.Duration
	Settle        time.Duration

	PodTimeout, PowerOffTimeout time.Duration
	Log                         *slog.Logger
}

// CPULimitResult is the CPU share a busy loop got under one limit.
type CPULimitResult struct {
	Limit  string
	Shares []float64 // cores used in each window
	Ratios Ratios    // share / limit
	Cgroup string    // the file read
	// Throttled is, per window, the share of the quota's periods in which
	// the cgroup was throttled: near 1 when the quota, not the host's
	// other load, held the loop back.
	Throttled []float64
}

// ResourcesResults are the figures of one run; a failed run keeps those it
// got.
type ResourcesResults struct {
	Started time.Time
	CPU     []CPULimitResult
	// OOM are, per run, from the container's start mark to the watch
	// delivering OOMKilled, in milliseconds.
	OOM             []float64
	OOMP50, OOMP90  time.Duration
	OOMMax          time.Duration
	MetricsPods     int
	QuietCPU        float64 // percent of one core
	ScrapedCPU      float64
	Scrapes         int
	ScrapeEvery     time.Duration
	ScrapeCPU       time.Duration // agent CPU per scrape of both endpoints
	MetricsBytes    int
	CadvisorBytes   int
	CadvisorLatency time.Duration // median time to fetch /metrics/cadvisor
	QuietWindow     time.Duration
	ScrapedWindow   time.Duration
	Notes           []string
	Loadavg         [2]float64 // 1-minute load average at the start and end
}

// RunResources boots a devnode and runs the three measurements. The node
// is always powered off, and swept if need be.
func RunResources(ctx context.Context, c ResourcesConfig) (res *ResourcesResults, err error) {
	res = &ResourcesResults{Started: time.Now(), Loadavg: [2]float64{loadavg(), -1}}
	defer func() { res.Loadavg[1] = loadavg() }()
	work, err := filepath.Abs(c.Work)
	if err != nil {
		return res, fmt.Errorf("resolve %s: %w", c.Work, err)
	}
	flash := filepath.Join(work, "flash")
	for _, dir := range []string{filepath.Join(flash, "pods"), filepath.Join(flash, "images")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, fmt.Errorf("prepare %s: %w", dir, err)
		}
	}
	img := Config{Mkimage: c.Mkimage, Busybox: c.Busybox, Arch: c.Arch}
	if _, err := img.buildImage(ctx, filepath.Join(flash, "images")); err != nil {
		return res, err
	}
	state := filepath.Join(work, "state")
	logPath := filepath.Join(work, "devnode.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c.Log.Info("starting devnode", "state", state, "listen", c.Listen, "log", logPath)
	d, err := StartDevnode(startCtx, DevnodeConfig{Bin: c.Devnode, Flash: flash, State: state, Listen: c.Listen, Log: logFile})
	if err != nil {
		return res, fmt.Errorf("resources (log: %s): %w", logPath, err)
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		return res, errors.Join(fmt.Errorf("open /proc: %w", err), d.Stop(2*time.Minute))
	}
	node := Node{Proc: proc, StateDir: state, DevnodePID: d.PID()}
	defer func() {
		err = errors.Join(err, d.PowerOff(node, c.PowerOffTimeout, err != nil, c.Runc, c.Log))
	}()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	base := "http://" + c.Listen
	tr, err := Track(watchCtx, base, &http.Client{})
	if err != nil {
		return res, err
	}
	r := resourcesBench{c: c, pods: filepath.Join(flash, "pods"), base: base, tr: tr, node: node,
		pb: podbootBench{c: Config{PodTimeout: c.PodTimeout}, pods: filepath.Join(flash, "pods"), tr: tr, node: node}}
	if err := r.warmUp(ctx); err != nil {
		return res, err
	}
	if len(c.CPULimits) > 0 {
		if err := r.cpuLimits(ctx, res); err != nil {
			return res, err
		}
	}
	if c.OOMRuns > 0 {
		if err := r.oom(ctx, res); err != nil {
			return res, err
		}
	}
	if c.MetricsPods > 0 {
		if err := r.metricsCost(ctx, res); err != nil {
			return res, err
		}
	}
	if n, cause := tr.Reconnects(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the API watch was reopened %d times (last: %v)", n, cause))
	}
	return res, nil
}

type resourcesBench struct {
	c    ResourcesConfig
	pods string
	base string
	tr   *Tracker
	node Node
	pb   podbootBench // for remove
}

func (r resourcesBench) publish(name string, manifest []byte) error {
	s, err := Stage(r.pods, name+".yaml", manifest)
	if err != nil {
		return err
	}
	if err := s.Publish(); err != nil {
		s.Discard()
		return err
	}
	return nil
}

func (r resourcesBench) runPod(ctx context.Context, name string, manifest []byte) error {
	if err := r.publish(name, manifest); err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, r.c.PodTimeout)
	defer cancel()
	_, err := r.tr.WaitRunning(waitCtx, name)
	return err
}

func (r resourcesBench) remove(ctx context.Context, names ...string) error {
	specs := make([]PodSpec, len(names))
	for i, n := range names {
		specs[i].Name = n
	}
	return r.pb.remove(ctx, specs)
}

// warmUp runs one pod first, so that no figure pays for the image's first
// snapshot.
func (r resourcesBench) warmUp(ctx context.Context) error {
	name := podPrefix + "warmup"
	p := LimitedPod{Name: name, Script: "sleep 86400", GracePeriod: 1}
	if err := r.runPod(ctx, name, p.Manifest()); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return r.remove(ctx, name)
}

// log fetches a pod's container log from the API.
func (r resourcesBench) log(ctx context.Context, pod string) (string, error) {
	u := r.base + "/api/v1/namespaces/default/pods/" + url.PathEscape(pod) + "/log"
	body, _, err := get(ctx, u)
	return string(body), err
}

func get(ctx context.Context, u string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(t0)
	if err != nil {
		return nil, took, fmt.Errorf("get %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, took, fmt.Errorf("get %s: %s: %.300s", u, resp.Status, body)
	}
	return body, took, nil
}

// waitLog polls a pod's log until it holds want.
func (r resourcesBench) waitLog(ctx context.Context, pod, want string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.c.PodTimeout)
	defer cancel()
	for {
		out, err := r.log(ctx, pod)
		if err == nil && containsLine(out, want) {
			return out, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return out, fmt.Errorf("log of %s lacks %q: %w (last: %q)", pod, want, err, out)
		}
	}
}

func containsLine(s, line string) bool {
	for l := range strings.Lines(s) {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// sanitize makes a quantity part of a pod name: "0.5" → "0-5".
func sanitize(q string) string {
	return strings.ToLower(strings.ReplaceAll(q, ".", "-"))
}

const cpuHog = `cat /proc/self/cgroup; echo probed; while :; do :; done & while :; do :; done`

// cpuLimits runs a two-loop busy pod under each limit, one limit at a time,
// and samples its cgroup's CPU time over consecutive windows.
func (r resourcesBench) cpuLimits(ctx context.Context, res *ResourcesResults) error {
	for _, limit := range r.c.CPULimits {
		q, err := resource.ParseQuantity(limit)
		if err != nil {
			return fmt.Errorf("cpu limit %q: %w", limit, err)
		}
		cores := float64(q.MilliValue()) / 1000
		name := podPrefix + "cpu-" + sanitize(limit)
		p := LimitedPod{Name: name, Script: cpuHog, CPULimit: limit, GracePeriod: 1}
		if err := r.runPod(ctx, name, p.Manifest()); err != nil {
			return err
		}
		out := CPULimitResult{Limit: limit}
		err = func() error {
			log, err := r.waitLog(ctx, name, "probed")
			if err != nil {
				return err
			}
			path, v2, err := CPUUsageFile("/sys/fs/cgroup", CgroupsOf(log))
			if err != nil {
				return fmt.Errorf("pod %s: %w", name, err)
			}
			out.Cgroup = path
			statPath, err := CPUStatFile("/sys/fs/cgroup", CgroupsOf(log))
			if err != nil {
				return fmt.Errorf("pod %s: %w", name, err)
			}
			throttling := func() (Throttling, error) {
				data, err := os.ReadFile(statPath)
				if err != nil {
					return Throttling{}, fmt.Errorf("read cgroup cpu.stat: %w", err)
				}
				return ParseThrottling(string(data))
			}
			if err := sleep(ctx, r.c.CPUWarmUp); err != nil {
				return err
			}
			th0, err := throttling()
			if err != nil {
				return err
			}
			u0, err := ReadCPUUsage(path, v2)
			t0 := time.Now()
			if err != nil {
				return err
			}
			var ratios []float64
			for range r.c.CPUSamples {
				if err := sleep(ctx, r.c.CPUWindow); err != nil {
					return err
				}
				u1, err := ReadCPUUsage(path, v2)
				t1 := time.Now()
				if err != nil {
					return err
				}
				th1, err := throttling()
				if err != nil {
					return err
				}
				if dp := th1.Periods - th0.Periods; dp > 0 {
					out.Throttled = append(out.Throttled, float64(th1.Throttled-th0.Throttled)/float64(dp))
				}
				th0 = th1
				share := float64(u1-u0) / float64(t1.Sub(t0))
				out.Shares = append(out.Shares, share)
				ratios = append(ratios, share/cores)
				u0, t0 = u1, t1
			}
			out.Ratios = SummarizeRatios(ratios)
			return nil
		}()
		res.CPU = append(res.CPU, out)
		r.c.Log.Info("cpu limit", "limit", limit, "shares", out.Shares, "throttled", out.Throttled, "median_ratio", out.Ratios.Median)
		if rmErr := r.remove(ctx, name); err != nil || rmErr != nil {
			return errors.Join(err, rmErr)
		}
	}
	return nil
}

// oom runs one pod at a time that asks for more memory than its limit
// and times from its start mark to the watch delivering OOMKilled.
func (r resourcesBench) oom(ctx context.Context, res *ResourcesResults) error {
	script := `read up idle < /proc/uptime; echo ` + StartMark + `$up; exec dd if=/dev/zero of=/dev/null bs=64M`
	var lat []time.Duration
	for i := range r.c.OOMRuns {
		name := fmt.Sprintf("%soom-%02d", podPrefix, i)
		p := LimitedPod{Name: name, Script: script, MemoryLimit: r.c.OOMLimit, RestartPolicy: "Never", GracePeriod: 1}
		d, err := r.oomOnce(ctx, name, p.Manifest())
		if rmErr := r.remove(ctx, name); err != nil || rmErr != nil {
			return errors.Join(err, rmErr)
		}
		lat = append(lat, d)
		res.OOM = append(res.OOM, float64(d.Microseconds())/1000)
		r.c.Log.Info("oom to status", "pod", name, "took", d)
	}
	res.OOMP50, res.OOMP90, res.OOMMax = Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 100)
	return nil
}

func (r resourcesBench) oomOnce(ctx context.Context, name string, manifest []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.c.PodTimeout)
	defer cancel()
	// The watch is open before the pod exists, so its OOMKilled is an event.
	w := &Tracker{base: r.base, client: &http.Client{}, pods: map[string]trackedPod{}, changed: make(chan struct{})}
	rv, err := w.list(ctx)
	if err != nil {
		return 0, err
	}
	body, err := w.openWatch(ctx, rv)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if err := r.publish(name, manifest); err != nil {
		return 0, err
	}
	at, err := waitOOMKilled(body, name)
	if err != nil {
		return 0, fmt.Errorf("pod %s: %w", name, err)
	}
	log, err := r.log(ctx, name)
	if err != nil {
		return 0, err
	}
	start, err := ParseStartMark(log)
	if err != nil {
		return 0, fmt.Errorf("pod %s: %w", name, err)
	}
	return at - start, nil
}

// waitOOMKilled reads watch events until the pod named name has a container
// terminated with reason OOMKilled, and returns CLOCK_BOOTTIME at that
// event: the clock of /proc/uptime.
func waitOOMKilled(body io.Reader, name string) (time.Duration, error) {
	dec := json.NewDecoder(body)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			return 0, fmt.Errorf("watch for OOMKilled: %w", err)
		}
		at := boottime()
		if ev.Type != "ADDED" && ev.Type != "MODIFIED" {
			continue
		}
		var pod corev1.Pod
		if err := json.Unmarshal(ev.Object, &pod); err != nil {
			return 0, fmt.Errorf("decode pod of watch event: %w", err)
		}
		if pod.Name == name && OOMKilled(&pod) {
			return at, nil
		}
	}
}

// OOMKilled reports whether a container of the pod is terminated with
// reason OOMKilled.
func OOMKilled(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.Reason == "OOMKilled" {
			return true
		}
	}
	return false
}

func boottime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// metricsCost runs MetricsPods idle pods and measures the agent's CPU over
// a quiet window, then over a window with both metrics endpoints scraped.
func (r resourcesBench) metricsCost(ctx context.Context, res *ResourcesResults) error {
	var names []string
	defer func() {
		if len(names) > 0 {
			if err := r.remove(context.WithoutCancel(ctx), names...); err != nil {
				res.Notes = append(res.Notes, "removing the metrics pods: "+err.Error())
			}
		}
	}()
	cfg := Config{}
	for _, spec := range cfg.pods("metrics", r.c.MetricsPods) {
		if err := r.runPod(ctx, spec.Name, spec.Manifest()); err != nil {
			return err
		}
		names = append(names, spec.Name)
	}
	res.MetricsPods = len(names)
	pid, err := r.node.Agent()
	if err != nil {
		return err
	}
	if err := sleep(ctx, r.c.Settle); err != nil {
		return err
	}
	window := func(scrape func() error) (time.Duration, time.Duration, int, error) {
		c0, err := r.node.CPUTime(pid)
		if err != nil {
			return 0, 0, 0, err
		}
		t0 := time.Now()
		n := 0
		for time.Since(t0) < r.c.MetricsWindow {
			if scrape != nil {
				if err := scrape(); err != nil {
					return 0, 0, n, err
				}
				n++
			}
			next := t0.Add(time.Duration(n) * r.c.ScrapeEvery)
			if scrape == nil || next.After(t0.Add(r.c.MetricsWindow)) {
				next = t0.Add(r.c.MetricsWindow)
			}
			if err := sleep(ctx, time.Until(next)); err != nil {
				return 0, 0, n, err
			}
		}
		c1, err := r.node.CPUTime(pid)
		if err != nil {
			return 0, 0, n, err
		}
		return c1 - c0, time.Since(t0), n, nil
	}
	qCPU, qWall, _, err := window(nil)
	if err != nil {
		return err
	}
	var cadvisor []time.Duration
	scrape := func() error {
		m, _, err := get(ctx, r.base+"/metrics")
		if err != nil {
			return err
		}
		c, took, err := get(ctx, r.base+"/metrics/cadvisor")
		if err != nil {
			return err
		}
		res.MetricsBytes, res.CadvisorBytes = len(m), len(c)
		cadvisor = append(cadvisor, took)
		return nil
	}
	sCPU, sWall, n, err := window(scrape)
	if err != nil {
		return err
	}
	res.QuietCPU, res.ScrapedCPU = CPUPercent(qCPU, qWall), CPUPercent(sCPU, sWall)
	res.QuietWindow, res.ScrapedWindow, res.Scrapes, res.ScrapeEvery = qWall, sWall, n, r.c.ScrapeEvery
	res.ScrapeCPU = ScrapeCost(qCPU, qWall, sCPU, sWall, n)
	res.CadvisorLatency = Percentile(cadvisor, 50)
	r.c.Log.Info("metrics cost", "quiet_pct", res.QuietCPU, "scraped_pct", res.ScrapedCPU, "scrapes", n, "cpu_per_scrape", res.ScrapeCPU, "cadvisor_bytes", res.CadvisorBytes)
	return nil
}

func loadavg() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return -1
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return -1
	}
	return l.Load1
}
