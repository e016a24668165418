// Command qemuboot boots a podboot image directory in QEMU in the
// foreground and returns when the guest powers off; SIGINT or SIGTERM press
// the power button. qemu/boot builds and runs it.
//
//	qemuboot OUTDIR --api-port PORT --console FILE [--debug-shell]
//	         [--serial-socket PATH] [--monitor-socket PATH] [--forward HOST:GUEST]...
//	         [--usb-disk FILE]...
//
// Exit status: 0 when the guest powered itself off, 3 when it had to be
// quit after the power button timed out, 1 on any other end, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/qemu/machine"
)

func main() {
	cfg, err := parse(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "qemuboot: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("cmd", "qemuboot")
	res, err := run(context.Background(), cfg, log)
	switch {
	case err == nil:
	case res.Forced:
		log.Error("boot ended", "err", err)
		os.Exit(3)
	default:
		log.Error("boot ended", "err", err)
		os.Exit(1)
	}
}

// forwards collects repeated --forward flags.
type forwards []machine.Forward

func (f *forwards) String() string { return fmt.Sprint(*f) }
func (f *forwards) Set(s string) error {
	fw, err := machine.ParseForward(s)
	if err != nil {
		return err
	}
	*f = append(*f, fw)
	return nil
}

// files collects repeated file flags.
type files []string

func (f *files) String() string     { return fmt.Sprint(*f) }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

// parse reads the command line: the image directory may come before or
// after the flags.
func parse(args []string, stderr io.Writer) (machine.Config, error) {
	var cfg machine.Config
	fs := flag.NewFlagSet("qemuboot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: qemu/boot OUTDIR --api-port PORT --console FILE [flags]")
		fmt.Fprintln(stderr, "Boots out/<board> in QEMU (kernel+initramfs if OUTDIR/Image exists, else UEFI from disk.img);")
		fmt.Fprintln(stderr, "returns when the guest powers off. SIGINT/SIGTERM press the power button.")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.APIPort, "api-port", 0, "host port on 127.0.0.1 forwarded to the guest API (6443)")
	fs.StringVar(&cfg.Console, "console", "", "file that receives the serial console")
	fs.BoolVar(&cfg.DebugShell, "debug-shell", false, "add podboot.debug=shell to the kernel command line")
	fs.StringVar(&cfg.SerialSocket, "serial-socket", "", "unix socket connected to the serial console (the console file still gets everything)")
	fs.StringVar(&cfg.MonitorSocket, "monitor-socket", "", "extra QMP monitor unix socket for the caller")
	fs.Var((*forwards)(&cfg.Forwards), "forward", "extra HOST:GUEST TCP port forward (repeatable)")
	fs.Var((*files)(&cfg.USBDisks), "usb-disk", "raw disk image attached as a USB stick on an xHCI controller (repeatable)")
	fs.StringVar(&cfg.Append, "append", "", "more kernel command line (kernel images only)")
	fs.BoolVar(&cfg.Snapshot, "snapshot", false, "discard writes to disk.img (the flash does not persist)")
	fs.StringVar(&cfg.QEMU, "qemu", machine.DefaultQEMU, "QEMU binary")
	fs.StringVar(&cfg.Firmware, "bios", machine.DefaultFirmware, "UEFI firmware for images without a kernel")
	fs.IntVar(&cfg.MemoryMiB, "memory", machine.DefaultMemoryMiB, "guest memory in MiB")
	fs.IntVar(&cfg.CPUs, "smp", machine.DefaultCPUs, "guest CPUs")
	fs.DurationVar(&cfg.PowerdownTimeout, "powerdown-timeout", machine.DefaultPowerdownTimeout, "how long the guest may take to power off after the power button")

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return cfg, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(positional) {
	case 0:
		fs.Usage()
		return cfg, errors.New("no image directory given")
	case 1:
		cfg.Dir = positional[0]
	default:
		return cfg, fmt.Errorf("one image directory expected, got %s", strings.Join(positional, " "))
	}
	return cfg, cfg.Validate()
}

func run(ctx context.Context, cfg machine.Config, log *slog.Logger) (machine.Result, error) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	button := make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// A ^C in a terminal can reach us twice at once (from the terminal
		// and forwarded by a wrapper script): signals less than a second
		// apart are one press. A later one quits QEMU.
		var last time.Time
		for {
			select {
			case s := <-sigs:
				if time.Since(last) < time.Second {
					continue
				}
				last = time.Now()
				log.Info("signal", "signal", s)
				select {
				case button <- struct{}{}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return machine.Run(ctx, cfg, log, button, os.Stderr)
}
