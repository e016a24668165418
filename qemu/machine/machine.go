// Package machine boots a podboot image directory in QEMU (aarch64 virt,
// TCG) and powers it off the way a person would: the power button
// (system_powerdown over QMP), then a hard quit only if the guest does not
// power itself off in time.
//
// An image directory is what `make image` writes to out/<board>/: with a
// kernel (Image, initramfs.cpio.gz, cmdline.txt) QEMU boots it directly;
// without one it boots disk.img through UEFI firmware. disk.img is attached
// read-write (it is the board's flash and must persist across reboots)
// unless Snapshot is set. The machine is never started with -no-reboot: a
// guest reboot resets the machine, as on a board.
package machine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults for the machine the contract names.
const (
	DefaultQEMU             = "qemu-system-aarch64"
	DefaultFirmware         = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	DefaultMemoryMiB        = 1024
	DefaultCPUs             = 2
	DefaultPowerdownTimeout = 90 * time.Second
	// GuestAPIPort is where podagent listens in the guest.
	GuestAPIPort = 6443
)

// Forward is a host TCP port on 127.0.0.1 forwarded to a guest port.
type Forward struct {
	Host, Guest int
}

// ParseForward parses "HOST:GUEST".
func ParseForward(s string) (Forward, error) {
	h, g, ok := strings.Cut(s, ":")
	if !ok {
		return Forward{}, fmt.Errorf("parse forward %q: want HOST:GUEST ports", s)
	}
	hp, err := parsePort(h)
	if err != nil {
		return Forward{}, fmt.Errorf("parse forward %q: host port: %w", s, err)
	}
	gp, err := parsePort(g)
	if err != nil {
		return Forward{}, fmt.Errorf("parse forward %q: guest port: %w", s, err)
	}
	return Forward{Host: hp, Guest: gp}, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return p, nil
}

func (f Forward) String() string { return fmt.Sprintf("%d:%d", f.Host, f.Guest) }

// Config is one boot.
type Config struct {
	Dir     string // the image directory (out/<board>)
	APIPort int    // host port forwarded to the guest's API port 6443
	Console string // file that receives everything the serial console prints
	// SerialSocket, if set, is a unix socket (QEMU listens) connected to the
	// console, so a test can type into the debug shell; Console still gets
	// every byte.
	SerialSocket string
	// MonitorSocket, if set, is an extra QMP socket for the caller; the
	// machine keeps its own for the power button.
	MonitorSocket string
	Forwards      []Forward
	DebugShell    bool   // add podboot.debug=shell to the kernel command line
	Append        string // more kernel command line
	Snapshot      bool   // discard writes to disk.img
	QEMU          string
	Firmware      string // UEFI firmware for images without a kernel
	MemoryMiB     int
	CPUs          int
	// PowerdownTimeout is how long a power-button press may take before
	// QEMU is quit hard.
	PowerdownTimeout time.Duration
	// USBDisks are raw disk images attached as USB sticks (usb-storage
	// on a qemu-xhci controller), read-write.
	USBDisks []string
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.QEMU == "" {
		c.QEMU = DefaultQEMU
	}
	if c.Firmware == "" {
		c.Firmware = DefaultFirmware
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = DefaultMemoryMiB
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.PowerdownTimeout == 0 {
		c.PowerdownTimeout = DefaultPowerdownTimeout
	}
	return c
}

// Image is what an image directory holds.
type Image struct {
	Disk string
	// Kernel, Initramfs and Cmdline are empty for a UEFI image.
	Kernel, Initramfs, Cmdline string
}

// Direct reports whether the image boots with -kernel rather than UEFI.
func (i Image) Direct() bool { return i.Kernel != "" }

// Inspect reads an image directory.
func Inspect(dir string) (Image, error) {
	img := Image{Disk: filepath.Join(dir, "disk.img")}
	if _, err := os.Stat(img.Disk); err != nil {
		return Image{}, fmt.Errorf("inspect image %s: the flash disk: %w (build it with make image)", dir, err)
	}
	kernel := filepath.Join(dir, "Image")
	if _, err := os.Stat(kernel); errors.Is(err, os.ErrNotExist) {
		return img, nil // UEFI: the kernel is on disk.img's EFI partition
	} else if err != nil {
		return Image{}, fmt.Errorf("inspect image %s: %w", dir, err)
	}
	img.Kernel = kernel
	img.Initramfs = filepath.Join(dir, "initramfs.cpio.gz")
	if _, err := os.Stat(img.Initramfs); err != nil {
		return Image{}, fmt.Errorf("inspect image %s: it has a kernel but no initramfs: %w", dir, err)
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline.txt"))
	if err != nil {
		return Image{}, fmt.Errorf("inspect image %s: kernel command line: %w", dir, err)
	}
	img.Cmdline = strings.Join(strings.Fields(string(cmdline)), " ")
	return img, nil
}

// Validate checks a configuration before anything starts.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("no image directory given")
	case c.APIPort < 1 || c.APIPort > 65535:
		return fmt.Errorf("API port %d is not a port number (1-65535)", c.APIPort)
	case c.Console == "":
		return errors.New("no console file given (--console FILE)")
	}
	seen := map[int]bool{c.APIPort: true}
	for _, f := range c.Forwards {
		if seen[f.Host] {
			return fmt.Errorf("host port %d is forwarded twice", f.Host)
		}
		seen[f.Host] = true
	}
	return nil
}

// Args is QEMU's command line (without the binary) for img, with the
// machine's own QMP socket at qmpSocket.
func (c Config) Args(img Image, qmpSocket string) []string {
	c = c.withDefaults()
	args := []string{
		"-M", "virt", "-cpu", "cortex-a72",
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemoryMiB),
		"-nodefaults", "-display", "none",
	}
	if c.SerialSocket != "" {
		args = append(args, "-chardev", "socket,id=console,path="+escape(c.SerialSocket)+",server=on,wait=off,logfile="+escape(c.Console))
	} else {
		args = append(args, "-chardev", "file,id=console,path="+escape(c.Console))
	}
	args = append(args, "-serial", "chardev:console")
	args = append(args, "-qmp", "unix:"+escape(qmpSocket)+",server=on,wait=off")
	if c.MonitorSocket != "" {
		args = append(args, "-qmp", "unix:"+escape(c.MonitorSocket)+",server=on,wait=off")
	}
	netdev := "user,id=net0"
	for _, f := range append([]Forward{{Host: c.APIPort, Guest: GuestAPIPort}}, c.Forwards...) {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.Host, f.Guest)
	}
	// romfile= (none): UEFI must not try network boot before the disk.
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile=")
	args = append(args,
		"-drive", "if=none,id=flash,format=raw,file="+escape(img.Disk),
		"-device", "virtio-blk-pci,drive=flash,bootindex=0",
		"-device", "virtio-rng-pci",
	)
	if len(c.USBDisks) > 0 {
		args = append(args, "-device", "qemu-xhci,id=xhci")
		for i, d := range c.USBDisks {
			id := fmt.Sprintf("usbdisk%d", i)
			args = append(args, "-drive", "if=none,id="+id+",format=raw,file="+escape(d),
				"-device", "usb-storage,bus=xhci.0,drive="+id+",removable=on")
		}
	}
	if c.Snapshot {
		args = append(args, "-snapshot")
	}
	if img.Direct() {
		cmdline := img.Cmdline
		if c.DebugShell {
			cmdline = strings.TrimSpace(cmdline + " podboot.debug=shell")
		}
		if c.Append != "" {
			cmdline = strings.TrimSpace(cmdline + " " + c.Append)
		}
		args = append(args, "-kernel", img.Kernel, "-initrd", img.Initramfs, "-append", cmdline)
	} else {
		args = append(args, "-bios", c.Firmware)
	}
	return args
}

// escape doubles the commas in a path for QEMU's option syntax.
func escape(path string) string { return strings.ReplaceAll(path, ",", ",,") }

// ShellQuote renders a command line that can be pasted into a shell.
func ShellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}
