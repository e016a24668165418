package flashwear

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/qemu/e2e"
	"github.com/podboot/podboot/qemu/machine"
	"github.com/podboot/podboot/qemu/qmp"
)

// Config is one measurement.
type Config struct {
	// Work is the scratch directory: the image (built there unless Image
	// is set), the console, the snapshots.
	Work string
	// Image is a built qemu-arm64 image directory to copy instead of
	// building one (its flash should hold Pods running pods).
	Image string
	// Pods is how many pods the built image's flash holds.
	Pods int
	// Settle is the wait after an event before its writes are counted:
	// the guest's dirty pages are written back within 30 s
	// (vm.dirty_expire_centisecs) plus the flusher's 5 s period, and
	// ext4 commits its journal every 5 s.
	Settle time.Duration
	// Rest is the window at rest, sampled every RestSample.
	Rest, RestSample time.Duration
	// Starts and Restarts are how many pod starts (and deletions) and
	// container restarts to average over; Reboot adds a reboot.
	Starts, Restarts int
	Reboot           bool
	Log              *slog.Logger
}

// Phase is the writes of one part of the measurement.
type Phase struct {
	Name string `json:"name"`
	// Events is how many events the writes are for (pod starts,
	// restarts); 0 for a window of time.
	Events int           `json:"events"`
	Window time.Duration `json:"window"`
	// From QMP query-blockstats of the flash drive: bytes and write
	// requests the guest sent to the virtio disk, and flushes.
	WrBytes    uint64   `json:"wr_bytes"`
	WrOps      uint64   `json:"wr_operations"`
	FlushOps   uint64   `json:"flush_operations"`
	Changes    []Change `json:"changes"`
	Note       string   `json:"note,omitempty"`
	changesErr error
}

// RestPoint is the cumulative writes at a moment of the rest window.
type RestPoint struct {
	At       time.Duration `json:"at"`
	WrBytes  uint64        `json:"wr_bytes"`
	WrOps    uint64        `json:"wr_operations"`
	FlushOps uint64        `json:"flush_operations"`
}

// Report is what the measurement found.
type Report struct {
	Started time.Time   `json:"started"`
	Pods    int         `json:"pods"`
	Phases  []Phase     `json:"phases"`
	Rest    []RestPoint `json:"rest"`
}

// stats are the flash drive's counters.
type stats struct{ wrBytes, wrOps, flushOps uint64 }

func (a stats) sub(b stats) stats {
	return stats{a.wrBytes - b.wrBytes, a.wrOps - b.wrOps, a.flushOps - b.flushOps}
}

// board is the running guest and what watches it.
type board struct {
	c       Config
	dir     string // the image directory
	disk    string
	monitor *qmp.Conn
	resets  chan struct{} // QEMU's RESET events: the guest rebooted
	api     *api
	shell   *shell
	button  chan struct{}
	done    chan error
	files   Files // the last snapshot
	stats   stats // the counters at the last snapshot
	at      time.Time
}

// Run builds (or copies) the image, boots it with an extra QMP monitor,
// and measures the flash writes of: the boot (QEMU's start to the pods
// running plus Settle), a rest window, pod starts and deletions through
// the API, restarts of a crash-looping container, and a reboot. For each
// it lists the flash's files that changed, from journal-replayed copies
// of the disk image. The board is powered off at the end, or killed if
// ctx ends.
func Run(ctx context.Context, c Config) (*Report, error) {
	rep := &Report{Started: time.Now(), Pods: c.Pods}
	dir, err := c.image()
	if err != nil {
		return rep, err
	}
	b := &board{c: c, dir: dir, disk: filepath.Join(dir, "disk.img"), button: make(chan struct{}, 2), done: make(chan error, 1)}
	if b.files, err = SnapshotFiles(b.disk, c.Work); err != nil {
		return rep, fmt.Errorf("the built flash: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := b.boot(ctx); err != nil {
		return rep, err
	}
	runErr := b.measure(ctx, rep)
	offErr := b.powerOff()
	return rep, errors.Join(runErr, offErr)
}

func (c Config) image() (string, error) {
	dir := filepath.Join(c.Work, "image")
	if c.Image != "" {
		c.Log.Info("copying the image", "from", c.Image)
		return dir, e2e.CopyImage(c.Image, dir)
	}
	pods, images := filepath.Join(c.Work, "pods"), filepath.Join(c.Work, "images")
	if err := os.MkdirAll(pods, 0o755); err != nil {
		return "", fmt.Errorf("flash wear: %w", err)
	}
	for i := range c.Pods {
		data, err := yaml.Marshal(restingPod(i))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(pods, fmt.Sprintf("wear-%02d.yaml", i)), data, 0o644); err != nil {
			return "", fmt.Errorf("flash wear: %w", err)
		}
	}
	c.Log.Info("building the busybox image and the qemu-arm64 firmware (go run ./rootfs/cmd/mkfirmware)", "pods", c.Pods)
	if err := e2e.ExampleImages(images, "busybox"); err != nil {
		return "", fmt.Errorf("flash wear: %w", err)
	}
	out, took, err := e2e.BuildImage("qemu-arm64", pods, images, dir)
	if err != nil {
		return "", fmt.Errorf("flash wear: %w\n%s", err, out)
	}
	c.Log.Info("image built", "dir", dir, "took", took.Round(time.Second))
	return dir, nil
}

// restingPod is pod i of the flash: steady busybox pods, one that logs a
// line every 10 s (its log is on tmpfs: it must not reach the flash)
// and one with an exec readiness probe every 10 s.
func restingPod(i int) *corev1.Pod {
	script := `trap 'exit 0' TERM; sleep 86400 & wait`
	if i == 0 {
		script = `trap 'exit 0' TERM; i=0; while true; do echo "line $i"; i=$((i+1)); sleep 10 & wait; done`
	}
	c := corev1.Container{Name: "main", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script}}
	if i == 1 {
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, PeriodSeconds: 10}
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("wear-%02d", i), Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}, TerminationGracePeriodSeconds: new(int64(2))},
	}
}

// newPod is a pod added while the board runs: plain busybox sleep (no
// quotes in its JSON, which goes through the shell in single quotes).
func newPod(name string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64(2)),
			Containers:                    []corev1.Container{{Name: "main", Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "86400"}}},
		},
	}
}

// boot starts QEMU with a QMP monitor of our own and connects to it.
func (b *board) boot(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	mon := filepath.Join(os.TempDir(), fmt.Sprintf("flashwear-%d.qmp", os.Getpid()))
	serial := filepath.Join(os.TempDir(), fmt.Sprintf("flashwear-%d.serial", os.Getpid()))
	cfg := machine.Config{
		Dir: b.dir, APIPort: port, Console: filepath.Join(b.c.Work, "console.log"),
		MonitorSocket: mon, SerialSocket: serial, DebugShell: true,
		PowerdownTimeout: 3 * time.Minute,
	}
	b.shell = newShell(serial, cfg.Console)
	qemuLog, err := os.Create(filepath.Join(b.c.Work, "qemuboot.log"))
	if err != nil {
		return fmt.Errorf("flash wear: %w", err)
	}
	go func() {
		defer qemuLog.Close()
		_, err := machine.Run(ctx, cfg, slog.New(slog.NewTextHandler(qemuLog, nil)), b.button, qemuLog)
		b.done <- err
	}()
	b.at = time.Now()
	b.c.Log.Info("QEMU started", "console", cfg.Console, "api", port)
	dialCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// The monitor's events must be drained, or its reader stalls and no
	// command gets its answer; only RESET matters here.
	events := make(chan qmp.Event, 16)
	b.resets = make(chan struct{}, 4)
	go func() {
		for e := range events {
			if e.Name == "RESET" {
				select {
				case b.resets <- struct{}{}:
				default:
				}
			}
		}
	}()
	if b.monitor, err = qmp.Dial(dialCtx, mon, events); err != nil {
		return fmt.Errorf("flash wear: %w", err)
	}
	b.api, err = newAPI(filepath.Join(b.dir, "kubeconfig"), fmt.Sprintf("https://127.0.0.1:%d", port))
	return err
}

// powerOff presses the power button and waits for QEMU to exit.
func (b *board) powerOff() error {
	if b.monitor != nil {
		b.monitor.Close()
	}
	if b.shell != nil {
		b.shell.close()
	}
	b.button <- struct{}{}
	select {
	case err := <-b.done:
		return err
	case <-time.After(5 * time.Minute):
		b.button <- struct{}{} // a second press quits QEMU
		return fmt.Errorf("flash wear: the board did not power off within 5 minutes")
	}
}

// blockstats reads the flash drive's counters over QMP.
func (b *board) blockstats(ctx context.Context) (stats, error) {
	raw, err := b.monitor.Execute(ctx, "query-blockstats")
	if err != nil {
		return stats{}, err
	}
	return parseBlockstats(raw, "flash")
}

// parseBlockstats picks the drive named device (the -drive id) out of
// query-blockstats' answer.
func parseBlockstats(raw json.RawMessage, device string) (stats, error) {
	var devs []struct {
		Device string `json:"device"`
		Stats  struct {
			WrBytes  uint64 `json:"wr_bytes"`
			WrOps    uint64 `json:"wr_operations"`
			FlushOps uint64 `json:"flush_operations"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(raw, &devs); err != nil {
		return stats{}, fmt.Errorf("decode query-blockstats: %w", err)
	}
	for _, d := range devs {
		if d.Device == device {
			return stats{d.Stats.WrBytes, d.Stats.WrOps, d.Stats.FlushOps}, nil
		}
	}
	return stats{}, fmt.Errorf("query-blockstats has no drive %q: %s", device, raw)
}

// checkpoint reads the counters and the files, and returns the phase
// since the last checkpoint.
func (b *board) checkpoint(ctx context.Context, name string, events int) (Phase, error) {
	s, err := b.blockstats(ctx)
	if err != nil {
		return Phase{}, err
	}
	files, ferr := SnapshotFiles(b.disk, b.c.Work)
	now := time.Now()
	d := s.sub(b.stats)
	p := Phase{Name: name, Events: events, Window: now.Sub(b.at), WrBytes: d.wrBytes, WrOps: d.wrOps, FlushOps: d.flushOps}
	if s.wrBytes < b.stats.wrBytes {
		// QEMU keeps its counters across a guest reset; if one ever
		// does not, say so rather than report a wrapped number.
		p.WrBytes, p.WrOps, p.FlushOps = s.wrBytes, s.wrOps, s.flushOps
		p.Note = "the counters restarted during the phase: only the writes since are counted"
	}
	if ferr != nil {
		p.changesErr = ferr
		b.c.Log.Warn("snapshot of the flash failed", "phase", name, "err", ferr)
	} else {
		p.Changes = Diff(b.files, files)
		b.files = files
	}
	b.stats, b.at = s, now
	b.c.Log.Info("phase", "name", name, "events", events, "window", p.Window.Round(time.Second), "wr_bytes", p.WrBytes, "wr_operations", p.WrOps, "flushes", p.FlushOps, "changes", len(p.Changes))
	return p, nil
}

// mark resets the baseline without reporting (the time spent waiting for
// something that is not part of a phase).
func (b *board) mark(ctx context.Context) error {
	_, err := b.checkpoint(ctx, "(between phases)", 0)
	return err
}

func (b *board) measure(ctx context.Context, rep *Report) error {
	add := func(p Phase, err error) error {
		if err == nil {
			rep.Phases = append(rep.Phases, p)
		}
		return err
	}
	log := b.c.Log
	// Boot: from QEMU's start (counters at 0, b.files the built flash).
	if err := b.waitPods(ctx, b.c.Pods, 10*time.Minute); err != nil {
		return err
	}
	log.Info("pods running; settling", "settle", b.c.Settle)
	if err := sleep(ctx, b.c.Settle); err != nil {
		return err
	}
	if err := add(b.checkpoint(ctx, "boot", 1)); err != nil {
		return err
	}

	// Rest.
	log.Info("at rest", "window", b.c.Rest)
	start := time.Now()
	rep.Rest = append(rep.Rest, RestPoint{At: 0, WrBytes: b.stats.wrBytes, WrOps: b.stats.wrOps, FlushOps: b.stats.flushOps})
	for time.Since(start) < b.c.Rest {
		if err := sleep(ctx, min(b.c.RestSample, b.c.Rest-time.Since(start))); err != nil {
			return err
		}
		s, err := b.blockstats(ctx)
		if err != nil {
			return err
		}
		rep.Rest = append(rep.Rest, RestPoint{At: time.Since(start), WrBytes: s.wrBytes, WrOps: s.wrOps, FlushOps: s.flushOps})
	}
	if err := add(b.checkpoint(ctx, "rest", 0)); err != nil {
		return err
	}

	// Pod starts: a manifest written into /flash/pods through the debug
	// shell (the API serves reads only; a person with a shell, or a
	// manifest update, writes it), renamed in from a hidden file as an
	// editor that saves safely does. Then their deletions.
	for i := range b.c.Starts {
		name := "wear-new-" + strconv.Itoa(i)
		data, err := json.Marshal(newPod(name))
		if err != nil {
			return err
		}
		cmd := fmt.Sprintf("echo '%s' > /flash/pods/.%s.tmp && mv /flash/pods/.%s.tmp /flash/pods/%s.json", data, name, name, name)
		if _, err := b.shell.run(cmd, time.Minute); err != nil {
			return err
		}
		if err := b.waitPods(ctx, b.c.Pods+i+1, 5*time.Minute); err != nil {
			return err
		}
		if err := sleep(ctx, b.c.Settle); err != nil {
			return err
		}
		if err := add(b.checkpoint(ctx, "pod start", 1)); err != nil {
			return err
		}
	}
	for i := range b.c.Starts {
		name := "wear-new-" + strconv.Itoa(i)
		if _, err := b.shell.run("rm /flash/pods/"+name+".json", time.Minute); err != nil {
			return err
		}
		if err := b.waitGone(ctx, name, 5*time.Minute); err != nil {
			return err
		}
		if err := sleep(ctx, b.c.Settle); err != nil {
			return err
		}
		if err := add(b.checkpoint(ctx, "pod delete", 1)); err != nil {
			return err
		}
	}

	// Restarts: a crash-looping pod, counted once its creation has
	// settled and it has restarted twice (10 s, 20 s of backoff).
	if b.c.Restarts > 0 {
		crash := newPod("wear-crash")
		crash.Spec.Containers[0].Command = []string{"sh", "-c", "echo crashing; exit 1"}
		data, err := json.Marshal(crash)
		if err != nil {
			return err
		}
		if _, err := b.shell.run(fmt.Sprintf("echo '%s' > /flash/pods/.wear-crash.tmp && mv /flash/pods/.wear-crash.tmp /flash/pods/wear-crash.json", data), time.Minute); err != nil {
			return err
		}
		r0, err := b.waitRestarts(ctx, crash.Name, 2, 5*time.Minute)
		if err != nil {
			return err
		}
		if err := sleep(ctx, b.c.Settle); err != nil {
			return err
		}
		if err := b.mark(ctx); err != nil {
			return err
		}
		r0, err = b.waitRestarts(ctx, crash.Name, r0, time.Minute) // where it is now
		if err != nil {
			return err
		}
		r1, err := b.waitRestarts(ctx, crash.Name, r0+b.c.Restarts, 15*time.Minute)
		if err != nil {
			return err
		}
		// The last restart's writes settle; the next restart is at
		// least 80 s away (backoff 10 s doubling), beyond Settle.
		if err := sleep(ctx, b.c.Settle); err != nil {
			return err
		}
		p, err := b.checkpoint(ctx, "container restart", 0)
		if err != nil {
			return err
		}
		r2, err := b.waitRestarts(ctx, crash.Name, 0, time.Minute)
		if err != nil {
			return err
		}
		p.Events = r2 - r0
		if r2 != r1 {
			p.Note = fmt.Sprintf("restarts counted to %d at the end of the window", r2)
		}
		rep.Phases = append(rep.Phases, p)
		if _, err := b.shell.run("rm /flash/pods/wear-crash.json", time.Minute); err != nil {
			return err
		}
		if err := b.waitGone(ctx, crash.Name, 5*time.Minute); err != nil {
			return err
		}
		if err := sleep(ctx, b.c.Settle); err != nil {
			return err
		}
		if err := b.mark(ctx); err != nil {
			return err
		}
	}

	if b.c.Reboot {
		if err := b.api.reboot(ctx); err != nil {
			return err
		}
		// QEMU tells the machine's reset; the API's answers cannot (a
		// poll may miss the few seconds it is away).
		if err := b.waitReset(ctx, 5*time.Minute); err != nil {
			return err
		}
		if err := b.waitPods(ctx, b.c.Pods, 10*time.Minute); err != nil {
			return err
		}
		if err := sleep(ctx, b.c.Settle); err != nil {
			return err
		}
		if err := add(b.checkpoint(ctx, "reboot", 1)); err != nil {
			return err
		}
	}
	return nil
}

// waitPods waits until the default namespace has n pods, all Running
// with every container ready.
func (b *board) waitPods(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		pods, err := b.api.pods(ctx)
		if err == nil {
			ready := 0
			for _, p := range pods {
				if running(p) {
					ready++
				}
			}
			if ready == n && len(pods) == n {
				return nil
			}
			last = fmt.Sprintf("%d pods, %d running and ready", len(pods), ready)
		} else {
			last = err.Error()
		}
		if err := b.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flash wear: %d pods not running within %s (last: %s)", n, timeout, last)
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}

// waitGone waits until the pod is no longer listed.
func (b *board) waitGone(ctx context.Context, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pods, err := b.api.pods(ctx)
		if err == nil && !has(pods, name) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flash wear: pod %s still there %s after its deletion (%v)", name, timeout, err)
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}

// waitRestarts waits until the pod's container has restarted at least n
// times and returns the count.
func (b *board) waitRestarts(ctx context.Context, name string, n int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	got := -1
	for {
		pods, err := b.api.pods(ctx)
		if err == nil {
			for _, p := range pods {
				if p.Name == name && len(p.Status.ContainerStatuses) == 1 {
					got = int(p.Status.ContainerStatuses[0].RestartCount)
				}
			}
			if got >= n {
				return got, nil
			}
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("flash wear: pod %s restarted %d times within %s, want %d (%v)", name, got, timeout, n, err)
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return got, err
		}
	}
}

// waitReset waits for QEMU's RESET event: the guest rebooted.
func (b *board) waitReset(ctx context.Context, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case <-b.resets:
			return nil
		case <-deadline:
			return fmt.Errorf("flash wear: no reboot (QMP RESET) within %s of asking for one", timeout)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func (b *board) exited() error {
	select {
	case err := <-b.done:
		b.done <- err
		return fmt.Errorf("flash wear: QEMU exited: %v", err)
	default:
		return nil
	}
}

func running(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			return false
		}
	}
	return true
}

func has(pods []corev1.Pod, name string) bool {
	for _, p := range pods {
		if p.Name == name {
			return true
		}
	}
	return false
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
