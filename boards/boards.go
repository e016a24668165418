// Package boards holds the board definitions the firmware builder reads:
// one board.yaml per board (boards/<name>/board.yaml), embedded in the
// binary, plus the per-architecture userland packages (arch-<arch>.yaml).
//
// Every Debian package is pinned by name, exact version and sha256, so a
// build either gets the same bytes or stops.
package boards

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

//go:embed */board.yaml arch-*.yaml
var files embed.FS

// Boot styles: how the board's firmware finds the kernel.
const (
	// BootDirect: QEMU loads Image and initramfs given on its command line;
	// the disk holds only the flash.
	BootDirect = "direct"
	// BootUEFI: an EFI system partition with \EFI\BOOT\BOOTAA64.EFI, a
	// unified kernel image (kernel + initramfs + cmdline).
	BootUEFI = "uefi"
	// BootRaspberryPi: a FAT boot partition the Pi's firmware reads
	// (config.txt, cmdline.txt, kernel, initramfs, DTBs).
	BootRaspberryPi = "raspberrypi"
)

// Board is one board definition.
type Board struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Arch is the Debian and Go architecture of the board (arm64).
	Arch string `json:"arch"`
	// Boot is one of BootDirect, BootUEFI, BootRaspberryPi.
	Boot   string `json:"boot"`
	Kernel Kernel `json:"kernel"`
	// Modules are the kernel modules the board loads at boot, by module
	// name; their dependencies are resolved at build time.
	Modules []string `json:"modules"`
	// DTBs are paths under the kernel package's usr/lib/linux-image-<release>/,
	// copied to the root of the boot partition.
	DTBs []string `json:"dtbs,omitempty"`
	// Firmware is the package and files the board's boot ROM needs on the
	// boot partition (Raspberry Pi start*.elf, fixup*.dat).
	Firmware *Firmware `json:"firmware,omitempty"`
	// Console is the kernel's console= value.
	Console string `json:"console"`
	// Cmdline is appended after console= and the podboot defaults.
	Cmdline []string `json:"cmdline,omitempty"`
	// ConfigTxt is the Raspberry Pi config.txt; {kernel} and {initramfs}
	// are replaced by the file names on the boot partition.
	ConfigTxt string `json:"configTxt,omitempty"`
	// KernelFile and InitramfsFile name the files on the boot partition.
	KernelFile    string     `json:"kernelFile,omitempty"`
	InitramfsFile string     `json:"initramfsFile,omitempty"`
	Partitions    Partitions `json:"partitions"`
}

// Package is a pinned Debian package for the board's architecture.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	// Suite is where the version is published (bookworm, bookworm-security,
	// bookworm-backports); informational, apt finds it by version.
	Suite string `json:"suite,omitempty"`
}

// Kernel is the kernel package and where its files are.
type Kernel struct {
	Package
	// Release is the kernel release (uname -r), the directory under
	// lib/modules.
	Release string `json:"release"`
	// Image is the kernel image's path inside the package.
	Image string `json:"image"`
}

// Firmware is a package of boot firmware files.
type Firmware struct {
	Package
	// Dir is the directory inside the package that holds Files.
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
}

// Partitions is the disk layout.
type Partitions struct {
	// Table is "gpt" or "dos" (MBR: what the Raspberry Pi boot ROM reads).
	Table string `json:"table"`
	// BootMiB is the size of the FAT boot (or EFI system) partition; 0 for
	// none (the flash is the only partition).
	BootMiB int `json:"bootMiB"`
}

// Arch is the userland packages for one architecture.
type Arch struct {
	Arch string `json:"arch"`
	// E2fsckStatic provides sbin/e2fsck.static.
	E2fsckStatic Package `json:"e2fsckStatic"`
	// BusyboxStatic provides bin/busybox for the example images.
	BusyboxStatic Package `json:"busyboxStatic"`
	// EFIStub provides the systemd-stub that unified kernel images start.
	EFIStub Package `json:"efiStub"`
}

// Names lists the boards, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil // cannot happen: the embedded root always reads
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// Load returns the board called name.
func Load(name string) (*Board, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("board %q: unknown (boards: %s)", name, strings.Join(Names(), ", "))
	}
	data, err := files.ReadFile(path.Join(name, "board.yaml"))
	if err != nil {
		return nil, fmt.Errorf("board %q: %w", name, err)
	}
	var b Board
	if err := yaml.UnmarshalStrict(data, &b); err != nil {
		return nil, fmt.Errorf("board %q: parse board.yaml: %w", name, err)
	}
	if err := b.validate(name); err != nil {
		return nil, fmt.Errorf("board %q: %w", name, err)
	}
	return &b, nil
}

// LoadArch returns the userland packages for arch.
func LoadArch(arch string) (*Arch, error) {
	data, err := files.ReadFile("arch-" + arch + ".yaml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("architecture %q: no arch-%s.yaml", arch, arch)
	}
	if err != nil {
		return nil, fmt.Errorf("architecture %q: %w", arch, err)
	}
	var a Arch
	if err := yaml.UnmarshalStrict(data, &a); err != nil {
		return nil, fmt.Errorf("architecture %q: parse: %w", arch, err)
	}
	for _, p := range []Package{a.E2fsckStatic, a.BusyboxStatic, a.EFIStub} {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("architecture %q: %w", arch, err)
		}
	}
	return &a, nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (p Package) validate() error {
	switch {
	case p.Name == "":
		return errors.New("package without a name")
	case p.Version == "":
		return fmt.Errorf("package %s: no version", p.Name)
	case !sha256Hex.MatchString(p.SHA256):
		return fmt.Errorf("package %s=%s: sha256 %q is not 64 lowercase hex digits", p.Name, p.Version, p.SHA256)
	}
	return nil
}

func (b *Board) validate(dir string) error {
	if b.Name != dir {
		return fmt.Errorf("name %q differs from its directory", b.Name)
	}
	if b.Arch != "arm64" {
		return fmt.Errorf("arch %q: only arm64 is supported", b.Arch)
	}
	if err := b.Kernel.validate(); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	if b.Kernel.Release == "" || b.Kernel.Image == "" {
		return errors.New("kernel: release and image are required")
	}
	if len(b.Modules) == 0 {
		return errors.New("no modules")
	}
	if b.Console == "" {
		return errors.New("no console")
	}
	switch b.Partitions.Table {
	case "gpt", "dos":
	default:
		return fmt.Errorf("partition table %q: want gpt or dos", b.Partitions.Table)
	}
	switch b.Boot {
	case BootDirect:
		if b.Partitions.BootMiB != 0 {
			return errors.New("boot direct: no boot partition expected")
		}
	case BootUEFI:
		if b.Partitions.Table != "gpt" || b.Partitions.BootMiB < 32 {
			return errors.New("boot uefi: needs a gpt table and an EFI system partition of at least 32 MiB")
		}
	case BootRaspberryPi:
		if b.Partitions.Table != "dos" || b.Partitions.BootMiB < 32 {
			return errors.New("boot raspberrypi: needs a dos (MBR) table and a boot partition of at least 32 MiB")
		}
		if b.ConfigTxt == "" || b.KernelFile == "" || b.InitramfsFile == "" || len(b.DTBs) == 0 {
			return errors.New("boot raspberrypi: configTxt, kernelFile, initramfsFile and dtbs are required")
		}
	default:
		return fmt.Errorf("boot %q: want %s, %s or %s", b.Boot, BootDirect, BootUEFI, BootRaspberryPi)
	}
	if b.Firmware != nil {
		if err := b.Firmware.validate(); err != nil {
			return fmt.Errorf("firmware: %w", err)
		}
		if len(b.Firmware.Files) == 0 || b.Firmware.Dir == "" {
			return errors.New("firmware: dir and files are required")
		}
	}
	return nil
}

// CmdlineString is the kernel command line: console, podboot's defaults (cgroup2
// only, the flash by label) and the board's extra arguments.
func (b *Board) CmdlineString() string {
	args := append([]string{"console=" + b.Console, "cgroup_no_v1=all", "podboot.flash=LABEL=PODBOOT"}, b.Cmdline...)
	return strings.Join(args, " ")
}
