// Command otabench measures podboot's over-the-air updates (issue 13) on a
// devnode whose flash is an ext4 file system on a loop device, mounted
// noatime as the board mounts its flash:
//
//   - push → Ready: `podctl ota push` of a signed bundle of -pods pods,
//     from podctl's start to the last of the new pods Ready (the API's pod
//     list read every 20 ms); the same with an image in the bundle (a
//     busybox image of its own, imported before the switch); and from the
//     registry: from `podctl ota publish` returning to the last new pod
//     Ready, with the board polling every -poll (±10% jitter), so half a
//     poll interval of waiting is in it on average.
//   - failing update → rollback complete: a bundle with one crash-looping
//     pod pushed; from the push's start to the health gate's verdict (the
//     status says rolled-back: healthDeadline and the gate's tick) and to
//     the previous generation's pods all Ready again.
//   - bytes written to the flash per update: the loop device's sectors
//     written (/sys/block/loopN/stat, field 7, × 512) from just before the
//     push or publish to just after the commit (or the rollback), each end
//     preceded by a syncfs(2) of the flash, so everything the update made
//     ext4 send to the device is in it: the files' data, the metadata, the
//     journal. Beside it, the generation directory's files (what the
//     update wrote on purpose).
//
// It needs root (the loop mount, containerd), bin/devnode, bin/mkimage,
// bin/runc and bin/podctl (make build). bench/ota.sh runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/bench/podbench"
	"github.com/podboot/podboot/tools/imagebuild"
)

// Config is otabench's command line.
type Config struct {
	Bin, Work, Report string
	Keep              bool
	Runs              int // updates of each kind
	Pods              int // pods per generation
	FlashSize         int64
	Poll              time.Duration
	HealthDeadline    time.Duration
	StableFor         time.Duration
	Timeout           time.Duration // longest wait for one update
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Bin, "bin", "bin", "directory of devnode, mkimage, runc and podctl (make build)")
	flag.StringVar(&cfg.Work, "work", "", "scratch directory (default: a new one, removed at the end)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory (devnode.log, bundles)")
	flag.StringVar(&cfg.Report, "report", "", "also write the results as markdown to this file")
	flag.IntVar(&cfg.Runs, "runs", 5, "updates of each kind")
	flag.IntVar(&cfg.Pods, "pods", 3, "pods per generation")
	flag.Int64Var(&cfg.FlashSize, "flash-size", 1<<30, "size of the flash's ext4 image in bytes")
	flag.DurationVar(&cfg.Poll, "poll", 2*time.Second, "device.yaml ota.pollInterval")
	flag.DurationVar(&cfg.HealthDeadline, "health-deadline", 10*time.Second, "device.yaml ota.healthDeadline")
	flag.DurationVar(&cfg.StableFor, "stable-for", 3*time.Second, "device.yaml ota.stableFor")
	flag.DurationVar(&cfg.Timeout, "timeout", 3*time.Minute, "longest wait for one update")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("otabench failed", "err", err)
		os.Exit(1)
	}
}

// bench is one run's node and the tools that reach it.
type bench struct {
	cfg             Config
	log             *slog.Logger
	work, flash     string
	loop            string // loopN, the flash's block device
	base            string // http://127.0.0.1:PORT, the agent's API
	registry        string // 127.0.0.1:PORT
	key             string
	client          *http.Client
	gen             uint64
	committedPods   []string // the pods of the committed generation
	committedNumber uint64
}

func run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	if cfg.Bin, err = filepath.Abs(cfg.Bin); err != nil {
		return err
	}
	for _, b := range []string{"devnode", "mkimage", "runc", "podctl"} {
		if _, err := os.Stat(filepath.Join(cfg.Bin, b)); err != nil {
			return fmt.Errorf("bin/%s: %w (run make build)", b, err)
		}
	}
	work := cfg.Work
	if work == "" {
		if work, err = os.MkdirTemp("", "otabench"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if !cfg.Keep {
		defer os.RemoveAll(work)
	}
	b := &bench{cfg: cfg, log: log, work: work, flash: filepath.Join(work, "flash"), client: &http.Client{Timeout: 10 * time.Second}}
	unmount, err := b.mountFlash(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, unmount()) }()
	for _, d := range []string{filepath.Join(b.flash, "pods"), filepath.Join(b.flash, "images")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mk := exec.CommandContext(ctx, filepath.Join(cfg.Bin, "mkimage"), "-arch", runtime.GOARCH, "-busybox", "/bin/busybox", "-o", filepath.Join(b.flash, "images"))
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Errorf("mkimage: %w\n%s", err, out)
	}
	stopRegistry, err := b.serveRegistry()
	if err != nil {
		return err
	}
	defer stopRegistry()
	b.key = filepath.Join(work, "fleet.key")
	if _, err := b.podctl(ctx, "ota", "keygen", b.key); err != nil {
		return err
	}
	pub, err := os.ReadFile(b.key + ".pub")
	if err != nil {
		return err
	}
	device := fmt.Sprintf("ota:\n  keys: [%q]\n  source: oci://%s/fleet/edge:stable\n  insecure: true\n  pollInterval: %s\n  healthDeadline: %s\n  stableFor: %s\n",
		strings.TrimSpace(string(pub)), b.registry, cfg.Poll, cfg.HealthDeadline, cfg.StableFor)
	if err := os.WriteFile(filepath.Join(b.flash, "device.yaml"), []byte(device), 0o644); err != nil {
		return err
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

	var res results
	var errs []error
	// A first generation, unmeasured: the updates below replace one.
	if _, err := b.update(ctx, kindPush); err != nil {
		return fmt.Errorf("the first generation: %w", err)
	}
	// The flash's writes with nothing happening, for comparison: the
	// node at rest writes nothing.
	idleBefore, err := b.written()
	if err != nil {
		return err
	}
	if err := sleep(ctx, idleWindow); err != nil {
		return err
	}
	idleAfter, err := b.written()
	if err != nil {
		return err
	}
	res.idle = idleAfter - idleBefore
	for i := 0; i < cfg.Runs; i++ {
		for _, k := range []kind{kindPush, kindImage, kindRegistry, kindFailing} {
			m, err := b.update(ctx, k)
			if err != nil {
				log.Error("update failed", "kind", k, "err", err)
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
				continue
			}
			log.Info("update", "kind", k, "generation", m.generation, "ready", m.ready, "verdict", m.verdict, "flash bytes", m.bytes, "generation dir", m.genBytes)
			res.add(k, m)
		}
	}
	report := res.markdown(cfg)
	if len(errs) > 0 {
		report += "\nerrors:\n"
		for _, e := range errs {
			report += fmt.Sprintf("- %s\n", e)
		}
	}
	fmt.Print(report)
	if cfg.Report != "" {
		if werr := os.WriteFile(cfg.Report, []byte(report), 0o644); werr != nil {
			errs = append(errs, werr)
		}
	}
	return errors.Join(errs...)
}

// mountFlash makes an ext4 image, mounts it (loop, noatime) on b.flash
// and finds its loop device; the returned func unmounts it.
func (b *bench) mountFlash(ctx context.Context) (func() error, error) {
	img := filepath.Join(b.work, "flash.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(img, b.cfg.FlashSize); err != nil {
		return nil, fmt.Errorf("size the flash image: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "flash",
		// Inode tables and journal zeroed now, not by the kernel's
		// ext4lazyinit thread in the background of the measurements.
		"-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mkfs.ext4 %s: %w\n%s", img, err, out)
	}
	if err := os.MkdirAll(b.flash, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "loop,noatime", img, b.flash).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mount %s: %w\n%s", img, err, out)
	}
	unmount := func() error {
		if out, err := exec.Command("umount", b.flash).CombinedOutput(); err != nil {
			return fmt.Errorf("umount %s: %w\n%s", b.flash, err, out)
		}
		return nil
	}
	out, err := exec.CommandContext(ctx, "findmnt", "-n", "-o", "SOURCE", "--target", b.flash).Output()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("findmnt %s: %w", b.flash, err), unmount())
	}
	b.loop = filepath.Base(strings.TrimSpace(string(out)))
	if !strings.HasPrefix(b.loop, "loop") {
		return nil, errors.Join(fmt.Errorf("the flash is on %q, not a loop device", b.loop), unmount())
	}
	return unmount, nil
}

// written syncs the flash's file system (its dirty data and its
// journal) and returns the bytes written to its block device so far.
func (b *bench) written() (uint64, error) {
	f, err := os.Open(b.flash)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return 0, fmt.Errorf("syncfs %s: %w", b.flash, err)
	}
	data, err := os.ReadFile(filepath.Join("/sys/block", b.loop, "stat"))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data))
	if len(fields) < 7 {
		return 0, fmt.Errorf("/sys/block/%s/stat: %q", b.loop, data)
	}
	sectors, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/sys/block/%s/stat: sectors written %q: %w", b.loop, fields[6], err)
	}
	return sectors * 512, nil
}

// serveRegistry serves an empty in-memory registry on 127.0.0.1.
func (b *bench) serveRegistry() (func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the registry: %w", err)
	}
	b.registry = ln.Addr().String()
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

func (b *bench) podctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(b.cfg.Bin, "podctl"), args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// idleWindow is how long the flash's writes are read with no update.
const idleWindow = 10 * time.Second

// kind is one way an update comes.
type kind string

const (
	kindPush     kind = "push"
	kindImage    kind = "push, with an image"
	kindRegistry kind = "registry"
	kindFailing  kind = "failing (crash loop), pushed"
)

// measure is one update's figures.
type measure struct {
	generation uint64
	// ready: to the last new pod Ready (good updates); verdict: to the
	// status saying rolled-back, and ready then to the previous
	// generation's pods all Ready again (failing ones).
	ready, verdict time.Duration
	bytes          uint64 // written to the flash's block device
	genBytes       int64  // the generation directory's files
}

// genLabel marks each pod with its generation.
const genLabel = "otabench/generation"

// writeGeneration writes the next generation's pods (and image) and
// builds its bundle; it returns the bundle and the pods' names.
func (b *bench) writeGeneration(ctx context.Context, k kind) (string, []string, error) {
	b.gen++
	dir := filepath.Join(b.work, fmt.Sprintf("gen%d", b.gen))
	pods := filepath.Join(dir, "pods")
	if err := os.MkdirAll(pods, 0o755); err != nil {
		return "", nil, err
	}
	image := "busybox:1.36"
	args := []string{"ota", "build", "--key", b.key, "--generation", strconv.FormatUint(b.gen, 10), "--pods", pods}
	if k == kindImage {
		// An image of its own, different in every generation: the import
		// is real each time.
		image = fmt.Sprintf("otabench.local/app:%d", b.gen)
		images := filepath.Join(dir, "images")
		if err := os.MkdirAll(images, 0o755); err != nil {
			return "", nil, err
		}
		img, err := imagebuild.Build(imagebuild.Spec{Tags: []string{image}, Arch: runtime.GOARCH, Busybox: "/bin/busybox",
			Files: []imagebuild.File{{Path: "/release", Mode: 0o644, Data: []byte(image + "\n")}}})
		if err != nil {
			return "", nil, err
		}
		if err := imagebuild.WriteDockerArchive(filepath.Join(images, "app.tar"), map[string]v1.Image{image: img}); err != nil {
			return "", nil, err
		}
		args = append(args, "--images", images)
	}
	var names []string
	for i := range b.cfg.Pods {
		// Names of the generation's own: its pods are new pods, started
		// for it, not the previous ones relabelled in place.
		name := fmt.Sprintf("g%d-%d", b.gen, i)
		command := `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`
		if k == kindFailing && i == b.cfg.Pods-1 {
			command = `["sh", "-c", "exit 1"]`
		}
		manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s: "%d"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %q
    command: %s
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
`, name, genLabel, b.gen, image, command)
		if err := os.WriteFile(filepath.Join(pods, name+".yaml"), []byte(manifest), 0o644); err != nil {
			return "", nil, err
		}
		names = append(names, name)
	}
	out := filepath.Join(dir, "bundle.tar")
	if _, err := b.podctl(ctx, append(args, "-o", out)...); err != nil {
		return "", nil, err
	}
	return out, names, nil
}

// update makes, delivers and waits out one update of kind k.
func (b *bench) update(ctx context.Context, k kind) (measure, error) {
	bundle, names, err := b.writeGeneration(ctx, k)
	if err != nil {
		return measure{}, err
	}
	m := measure{generation: b.gen}
	before, err := b.written()
	if err != nil {
		return m, err
	}
	start := time.Now()
	switch k {
	case kindRegistry:
		if _, err := b.podctl(ctx, "ota", "publish", "--plain-http", bundle, b.registry+"/fleet/edge:stable"); err != nil {
			return m, err
		}
		start = time.Now()
	default:
		if _, err := b.podctl(ctx, "--server", b.base, "ota", "push", bundle); err != nil {
			return m, err
		}
	}
	deadline := time.Now().Add(b.cfg.Timeout)
	if k == kindFailing {
		st, err := b.waitStatus(ctx, deadline, func(st status) bool { return st.State == "rolled-back" && slices.Contains(st.Failed, b.gen) })
		if err != nil {
			return m, err
		}
		m.verdict = time.Since(start)
		if st.Generation != b.committedNumber {
			return m, fmt.Errorf("rolled back to generation %d, want %d", st.Generation, b.committedNumber)
		}
		if err := b.waitPods(ctx, deadline, b.committedNumber, b.committedPods, false); err != nil {
			return m, err
		}
		m.ready = time.Since(start)
	} else {
		if err := b.waitPods(ctx, deadline, b.gen, names, false); err != nil {
			return m, err
		}
		m.ready = time.Since(start)
		if _, err := b.waitStatus(ctx, deadline, func(st status) bool { return st.State == "committed" && st.Generation == b.gen }); err != nil {
			return m, err
		}
		b.committedNumber, b.committedPods = b.gen, names
		m.genBytes, err = dirBytes(filepath.Join(b.flash, "ota", "gen", fmt.Sprintf("%020d", b.gen)))
		if err != nil {
			return m, err
		}
	}
	// The old generation's pods stop after the switch: wait for them,
	// so that the next update starts from a quiet node.
	if err := b.waitPods(ctx, deadline, b.committedNumber, b.committedPods, true); err != nil {
		return m, err
	}
	after, err := b.written()
	if err != nil {
		return m, err
	}
	m.bytes = after - before
	return m, nil
}

// status is the part of GET /podboot/v1/ota read here.
type status struct {
	Generation uint64   `json:"generation"`
	State      string   `json:"state"`
	Failed     []uint64 `json:"failed"`
	Reason     string   `json:"reason"`
}

func (b *bench) waitStatus(ctx context.Context, deadline time.Time, cond func(status) bool) (status, error) {
	var st status
	for time.Now().Before(deadline) {
		if err := getJSON(ctx, b.client, b.base+"/podboot/v1/ota", &st); err == nil && cond(st) {
			return st, nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return st, err
		}
	}
	return st, fmt.Errorf("OTA status not reached within %s: last %+v", b.cfg.Timeout, st)
}

// waitPods waits until the pods labelled gen are exactly names, all
// Ready, and, when alone, no pod of another generation is left.
func (b *bench) waitPods(ctx context.Context, deadline time.Time, gen uint64, names []string, alone bool) error {
	want := slices.Sorted(slices.Values(names))
	var last string
	for time.Now().Before(deadline) {
		var list podList
		if err := getJSON(ctx, b.client, b.base+"/api/v1/namespaces/default/pods", &list); err == nil {
			var ready []string
			others := 0
			for _, p := range list.Items {
				g, ok := p.Metadata.Labels[genLabel]
				switch {
				case !ok:
				case g != strconv.FormatUint(gen, 10):
					others++
				case p.ready():
					ready = append(ready, p.Metadata.Name)
				}
			}
			slices.Sort(ready)
			if (others == 0 || !alone) && slices.Equal(ready, want) {
				return nil
			}
			last = fmt.Sprintf("ready %v, pods of other generations %d", ready, others)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("generation %d's pods %v not all Ready alone within %s: %s", gen, want, b.cfg.Timeout, last)
}

// podList is the part of a pod list read here.
type podList struct {
	Items []podItem `json:"items"`
}

type podItem struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Status struct {
		Conditions []struct{ Type, Status string } `json:"conditions"`
	} `json:"status"`
}

// ready is the pod's Ready condition.
func (p podItem) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
