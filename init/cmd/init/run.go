package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/init/clock"
	"github.com/podboot/podboot/init/cmdline"
	"github.com/podboot/podboot/init/containerd"
	"github.com/podboot/podboot/init/flash"
	"github.com/podboot/podboot/init/kmod"
	"github.com/podboot/podboot/init/mounts"
	"github.com/podboot/podboot/init/power"
	"github.com/podboot/podboot/init/supervise"
	"github.com/podboot/podboot/init/svclog"
	"github.com/podboot/podboot/init/usbstick"
	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/netsetup/hostnet"
)

// run boots the board and returns when it is to power off or reboot (a
// *power.Shutdown, after everything is stopped and the flash unmounted)
// or on an error it cannot boot past. cl receives the command line as soon
// as it is read, for main's fatal path.
func run(ctx context.Context, cfg Config, log *slog.Logger, console *tee, cl *cmdline.Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Power requests are heard from the first moment; they are acted on
	// once the services are up (or at once, below, if boot fails).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, power.Signals...)

	left, err := mounts.LeaveRootfs()
	if err != nil {
		// Containers will fail to start (pivot_root), the rest works.
		log.Error("initramfs root", "err", err)
	}
	if err := mounts.MountAll(mounts.System{}, mounts.Table(), func(m mounts.Mount, err error) {
		log.Warn("optional mount failed", "mount", m.String(), "err", err)
	}); err != nil {
		return fmt.Errorf("mount the system: %w", err)
	}
	if err := reopenConsole(); err != nil {
		log.Warn("console", "err", err)
	}
	log.Info("mounted", "rootBind", left, "table", strings.TrimSpace(mounts.Script(mounts.Table())))

	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		log.Warn("read kernel command line", "err", err)
	}
	c, err := cmdline.Parse(string(raw))
	if err != nil {
		log.Warn("kernel command line", "err", err)
	}
	*cl = c
	log.Info("kernel command line", "cmdline", strings.TrimSpace(string(raw)), "debugShell", c.DebugShell, "flash", "LABEL="+c.FlashLabel)

	// Ctrl-alt-del becomes SIGINT to PID 1 instead of an immediate reset.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		log.Warn("ctrl-alt-del to SIGINT", "err", err)
	}

	if ctrls, err := mounts.EnableControllers("/sys/fs/cgroup"); err != nil {
		log.Warn("cgroup controllers", "err", err)
	} else {
		log.Info("cgroup2 controllers enabled", "controllers", strings.Join(ctrls, " "))
	}

	loadModules(cfg, log)

	fl := mountFlash(cfg, c.FlashLabel, log)
	clockFile := filepath.Join(cfg.FlashDir, ".podboot", "clock")
	clockFloor := restoreClock(clockFile, fl, log)

	dev, err := device.Load(filepath.Join(cfg.FlashDir, "device.yaml"))
	if err != nil {
		// device.Load returns the defaults beside the error: boot on them.
		log.Error("device config: using defaults", "err", err)
	}
	hostname := dev.Hostname
	if hostname == "" {
		hostname = "podboot"
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		log.Warn("set hostname", "hostname", hostname, "err", err)
	} else {
		log.Info("hostname", "hostname", hostname)
	}

	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel()
	startNetwork(ctx, &bg, cfg, dev, log)
	ntp := &clock.NTP{
		Clock:   clock.System{},
		Servers: dev.Clock.NTPServers,
		Query:   clock.QueryNTP,
		Retry:   5 * time.Second,
		Resync:  time.Hour,
		Floor:   clockFloor,
		Log:     log,
	}
	bg.Go(func() { ntp.Run(ctx) })
	if fl.real {
		bg.Go(func() { clock.SaveEvery(ctx, clock.System{}, clockFile, cfg.ClockSave, log) })
	}
	// The OTA stick: mounted only on a board that takes its bundles from one.
	if dev.OTA.Enabled() && usbstick.Wanted(dev.OTA.Source) {
		stick := &usbstick.Watcher{Label: usbstick.Label, Dir: usbstick.Dir, Every: usbstick.Every, Sys: usbstick.NewSysfs(), Log: log}
		bg.Go(func() { stick.Run(ctx) })
	}

	// Services.
	fatalc := make(chan error, 4)
	sup := supervise.New(log)
	bg.Go(func() {
		if err := supervise.ReapOrphans(ctx, sup.Owns, log); err != nil {
			log.Error("reaper", "err", err)
		}
	})
	actions := make(chan power.Action, 4)
	bg.Go(func() { power.WatchInput(ctx, "/dev/input/event*", 5*time.Second, actions, log) })

	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		log.Warn("service log directory", "err", err)
	}
	initLog := &svclog.File{Path: filepath.Join(cfg.LogDir, "init.log"), Max: cfg.LogMax}
	console.add(initLog)
	defer initLog.Close()

	svcs := services(cfg, c.DebugShell, func(name string) io.Writer { return serviceOutput(cfg, name) },
		func(err error) { fatalc <- err })
	for _, s := range svcs {
		if err := prepare(s.Name); err != nil {
			log.Error("prepare service", "service", s.Name, "err", err)
		}
		if err := sup.Start(s); err != nil {
			log.Error("start service", "service", s.Name, "err", err)
			if s.Name != shellName {
				fatalc <- err
			}
		}
		if s.Name == containerdName {
			waitSocket(ctx, containerdLayout().Address(), 10*time.Second, log)
		}
	}
	log.Info("boot finished", "flash", fl.what)

	var action power.Action
	var reason string
	for action == power.None {
		select {
		case sig := <-sigs:
			action, reason = power.FromSignal(sig), "signal "+sig.String()
		case a := <-actions:
			action, reason = a, "power button"
		case err := <-fatalc:
			if c.DebugShell {
				log.Error("FATAL (podboot.debug=shell: not rebooting; use the shell)", "err", err)
				continue
			}
			log.Error("FATAL: rebooting after the countdown", "err", err)
			countdown(cfg.Countdown)
			action, reason = power.Reboot, err.Error()
		}
	}
	log.Info("shutting down", "action", action, "reason", reason)
	shutdown(ctx, shutdownSteps(cfg, sup, fl, clockFile), log)
	return &power.Shutdown{Action: action, Reason: reason}
}

const (
	containerdName = "containerd"
	agentName      = "podagent"
	shellName      = "shell"
	// cniBinDir is where the image puts the CNI plugins (rootfs/firmware).
	cniBinDir = "/usr/libexec/cni"
)

// containerdLayout is the board's containerd: sockets and state under
// /run/containerd, images and snapshots in /var/lib/containerd (both
// tmpfs: images are imported from the flash at every boot).
func containerdLayout() containerd.Layout {
	return containerd.Layout{Dir: "/run/containerd", RootDir: "/var/lib/containerd"}
}

// services are the board's services in start order; Stop goes the other
// way: the shell, then podagent (which stops the pods gracefully), then
// containerd.
func services(cfg Config, debugShell bool, output func(string) io.Writer, giveUp func(error)) []supervise.Service {
	svcs := []supervise.Service{
		{
			Name:        containerdName,
			Command:     func() *exec.Cmd { return containerdLayout().Command(cfg.BinDir) },
			Output:      output(containerdName),
			StopTimeout: cfg.ContainerdStop,
			MaxFailures: cfg.MaxFailures,
			OnGiveUp:    giveUp,
		},
		{
			Name: agentName,
			Command: func() *exec.Cmd {
				return exec.Command(filepath.Join(cfg.BinDir, "podagent"),
					"--flash", cfg.FlashDir,
					"--state", "/run/podboot",
					"--containerd", containerdLayout().Address(),
					"--runc", filepath.Join(cfg.BinDir, "runc"),
					"--cni-bin-dir", cniBinDir)
			},
			Output:      output(agentName),
			StopTimeout: cfg.AgentStop,
			MaxFailures: cfg.MaxFailures,
			OnGiveUp:    giveUp,
		},
	}
	if debugShell {
		svcs = append(svcs, supervise.Service{
			Name:    shellName,
			Command: func() *exec.Cmd { return shellCommand(cfg.Shell) },
			// An interactive shell ignores SIGTERM: do not wait long.
			StopTimeout: 250 * time.Millisecond,
		})
	}
	return svcs
}

// prepare does what a service needs before its first start.
func prepare(name string) error {
	if name == containerdName {
		return containerdLayout().Prepare()
	}
	return nil
}

// serviceOutput is the console, line by line with the service's name,
// and the service's bounded log file.
func serviceOutput(cfg Config, name string) io.Writer {
	out := &tee{}
	out.add(&svclog.Prefixer{W: os.Stdout, Prefix: name + ": "})
	out.add(&svclog.File{Path: filepath.Join(cfg.LogDir, name+".log"), Max: cfg.LogMax})
	return out
}

// waitSocket waits for containerd to listen before podagent starts, so
// that podagent's first run does not fail and wait for a restart.
func waitSocket(ctx context.Context, path string, timeout time.Duration, log *slog.Logger) {
	start := time.Now()
	for time.Since(start) < timeout && ctx.Err() == nil {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			log.Info("containerd is serving", "socket", path, "after", time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Warn("containerd not serving yet; starting podagent anyway", "socket", path, "waited", timeout)
}

func countdown(d time.Duration) {
	for i := int(d / time.Second); i > 0; i-- {
		fmt.Fprintf(os.Stderr, "podboot: rebooting in %d s\n", i)
		time.Sleep(time.Second)
	}
}

func loadModules(cfg Config, log *slog.Logger) {
	f, err := os.Open(cfg.LoadOrder)
	if err != nil {
		log.Warn("no module list: loading no modules", "err", err)
		return
	}
	paths, err := kmod.ParseLoadOrder(f)
	f.Close()
	if err != nil {
		log.Error("module list", "path", cfg.LoadOrder, "err", err)
		return
	}
	start := time.Now()
	n, err := kmod.LoadAll(kmod.Finit{}, paths, func(r kmod.Result) {
		if r.Err != nil {
			log.Error("module failed", "module", r.Name(), "err", r.Err)
		}
	})
	log.Info("modules loaded", "loaded", n, "listed", len(paths), "took", time.Since(start).Round(time.Millisecond), "failed", err != nil)
}

// flashState is what PID 1 knows about the mounted flash.
type flashState struct {
	real bool // an ext4 partition, not the stand-in tmpfs
	dev  string
	sb   flash.Superblock
	what string
}

func mountFlash(cfg Config, label string, log *slog.Logger) flashState {
	start := time.Now()
	d, err := flash.Wait(flash.Devices, label, cfg.FlashWait, 50*time.Millisecond)
	if err == nil {
		if why := d.Unclean(); why != "" {
			log.Warn("flash not clean: running e2fsck -p", "device", d.Path, "why", why)
			r := flash.Fsck(cfg.E2fsck, d.Path)
			level := slog.LevelInfo
			if !r.Fixed() {
				level = slog.LevelError
			}
			log.Log(context.Background(), level, "e2fsck", "device", d.Path, "code", r.Code, "result", r.Meaning(),
				"output", strings.TrimSpace(r.Output))
		}
		var m mounts.Mount
		if m, err = flash.MountExt4(d.Path, cfg.FlashDir); err == nil {
			log.Info("flash mounted", "mount", m.String(), "took", time.Since(start).Round(time.Millisecond))
			return flashState{real: true, dev: d.Path, sb: d.Superblock, what: d.Path}
		}
	}
	log.Error("NO FLASH: booting with an empty /flash (no pods will run; the API still answers)",
		"label", label, "err", err)
	if m, err := flash.MountEmpty(cfg.FlashDir); err != nil {
		log.Error("stand-in flash", "err", err)
	} else {
		log.Info("stand-in flash mounted", "mount", m.String())
	}
	return flashState{what: "none (tmpfs)"}
}

// restoreClock moves the clock forward to the latest time the board is
// known to have seen: the saved time, or the flash's last mount or write.
// It returns that time: NTP never moves the clock back past it.
func restoreClock(path string, fl flashState, log *slog.Logger) time.Time {
	saved, err := clock.Load(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("saved clock", "err", err)
	}
	floor := clock.Latest(saved, fl.sb.Mounted, fl.sb.Written)
	set, err := clock.Forward(clock.System{}, floor)
	switch {
	case err != nil:
		log.Error("restore clock", "err", err)
	case set:
		log.Info("clock restored (never backwards)", "to", floor.UTC().Format(time.RFC3339))
	}
	return floor
}

func startNetwork(ctx context.Context, bg *sync.WaitGroup, cfg Config, dev device.Device, log *slog.Logger) {
	nc, err := hostnet.FromDevice(dev.Network, cfg.ResolvConf)
	if err != nil {
		log.Error("network config: using DHCP", "err", err)
		nc = hostnet.Config{ResolvConf: cfg.ResolvConf}
	}
	r := &hostnet.Runner{
		Config: nc,
		Links:  hostnet.Netlink{},
		DHCP:   hostnet.DHCPv4(5*time.Second, 2),
		Timing: hostnet.DefaultTiming,
		Log:    log,
	}
	bg.Go(func() { r.Run(ctx) })
}

// step is one step of the shutdown.
type step struct {
	name string
	do   func(ctx context.Context) (string, error)
}

// shutdownSteps are the contract's order: services (podagent first, it
// stops the pods; then containerd), save the clock, sync, unmount the
// flash, drain the console.
func shutdownSteps(cfg Config, sup *supervise.Supervisor, fl flashState, clockFile string) []step {
	return []step{
		{"stop services", func(ctx context.Context) (string, error) { return "", sup.Stop(ctx) }},
		{"save clock", func(context.Context) (string, error) {
			if !fl.real {
				return "no flash", nil
			}
			now := time.Now()
			return now.UTC().Format(time.RFC3339), clock.Save(clockFile, now)
		}},
		{"sync", func(context.Context) (string, error) { unix.Sync(); return "", nil }},
		{"unmount flash", func(context.Context) (string, error) { return flash.Unmount(cfg.FlashDir) }},
		{"drain console", func(context.Context) (string, error) { drainConsole(); return "", nil }},
	}
}

// shutdown runs every step in order; a failed step is logged and the next
// one still runs: a board that cannot save its clock must still unmount.
func shutdown(ctx context.Context, steps []step, log *slog.Logger) {
	for _, s := range steps {
		start := time.Now()
		detail, err := s.do(ctx)
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			log.Error("shutdown step failed", "step", s.name, "err", err, "took", took)
			continue
		}
		log.Info("shutdown step", "step", s.name, "result", detail, "took", took)
	}
}

// tee writes to every writer, ignoring their errors: a full log file must
// not silence the console, nor the console the file.
type tee struct {
	mu sync.Mutex
	ws []io.Writer
}

func (t *tee) add(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ws = append(t.ws, w)
}

func (t *tee) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.ws {
		_, _ = w.Write(p)
	}
	return len(p), nil
}
