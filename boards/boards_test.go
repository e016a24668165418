package boards

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNames(t *testing.T) {
	want := []string{"generic-arm64", "qemu-arm64", "rpi4", "rpi5"}
	if diff := cmp.Diff(want, Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
}

// Every board loads, pins its packages and carries what PID 1 needs.
func TestLoadEveryBoard(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			b, err := Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Kernel.SHA256) != 64 {
				t.Errorf("kernel sha256 %q not pinned", b.Kernel.SHA256)
			}
			if !strings.Contains(b.Kernel.Image, b.Kernel.Release) {
				t.Errorf("kernel image %q does not name release %q", b.Kernel.Image, b.Kernel.Release)
			}
			for _, m := range []string{"crc32c_generic", "ext4", "overlay", "bridge", "veth", "br_netfilter",
				"vsock", "vsock_loopback", "nf_tables", "nft_nat", "nf_conntrack", "evdev", "gpio_keys"} {
				if !slices.Contains(b.Modules, m) {
					t.Errorf("module %s missing", m)
				}
			}
			// The OTA stick (init/usbstick): FAT with the kernel's default
			// codepage and iocharset, on USB mass storage. The Pi 5's
			// kernel has no driver for its USB host (RP1) yet.
			stick := []string{"vfat", "nls_cp437", "nls_ascii", "usb_storage", "sd_mod"}
			if name == "rpi5" {
				stick = stick[:3]
			}
			for _, m := range stick {
				if !slices.Contains(b.Modules, m) {
					t.Errorf("module %s (the OTA stick) missing", m)
				}
			}
			if i := slices.Index(b.Modules, "crc32c_generic"); i != 0 {
				t.Errorf("crc32c_generic at %d, want first", i)
			}
			if c := b.CmdlineString(); !strings.Contains(c, "cgroup_no_v1=all") || !strings.HasPrefix(c, "console="+b.Console) {
				t.Errorf("cmdline %q lacks console or cgroup_no_v1=all", c)
			}
			if b.Boot == BootRaspberryPi {
				for _, s := range []string{"arm_64bit=1", "enable_uart=1", "kernel={kernel}", "initramfs {initramfs} followkernel"} {
					if !strings.Contains(b.ConfigTxt, s) {
						t.Errorf("config.txt lacks %q", s)
					}
				}
			}
		})
	}
}

func TestBoardSpecifics(t *testing.T) {
	tests := []struct {
		board, console, boot, table, dtb string
	}{
		{"qemu-arm64", "ttyAMA0", BootDirect, "gpt", ""},
		{"generic-arm64", "ttyAMA0", BootUEFI, "gpt", ""},
		{"rpi4", "ttyS1,115200", BootRaspberryPi, "dos", "broadcom/bcm2711-rpi-4-b.dtb"},
		{"rpi5", "ttyAMA10,115200", BootRaspberryPi, "dos", "broadcom/bcm2712-rpi-5-b.dtb"},
	}
	for _, tt := range tests {
		b, err := Load(tt.board)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{b.Console, b.Boot, b.Partitions.Table}
		if diff := cmp.Diff([]string{tt.console, tt.boot, tt.table}, got); diff != "" {
			t.Errorf("%s console, boot, table (-want +got):\n%s", tt.board, diff)
		}
		if tt.dtb != "" && !slices.Contains(b.DTBs, tt.dtb) {
			t.Errorf("%s: dtbs %q lack %s", tt.board, b.DTBs, tt.dtb)
		}
	}
	rpi4, _ := Load("rpi4")
	if rpi4.Firmware == nil || !slices.Contains(rpi4.Firmware.Files, "start4.elf") || !slices.Contains(rpi4.Firmware.Files, "fixup4.dat") {
		t.Errorf("rpi4 firmware %+v lacks start4.elf and fixup4.dat", rpi4.Firmware)
	}
	rpi5, _ := Load("rpi5")
	if rpi5.Firmware != nil || rpi5.KernelFile != "kernel_2712.img" {
		t.Errorf("rpi5: firmware %+v (want none: EEPROM bootloader), kernel file %q (want kernel_2712.img)", rpi5.Firmware, rpi5.KernelFile)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("pi-zero"); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("Load(pi-zero) = %v, want an unknown-board error", err)
	}
	if _, err := LoadArch("riscv64"); err == nil {
		t.Error("LoadArch(riscv64) succeeded")
	}
}

func TestLoadArch(t *testing.T) {
	a, err := LoadArch("arm64")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{a.E2fsckStatic.Name, a.BusyboxStatic.Name, a.EFIStub.Name}
	if diff := cmp.Diff([]string{"e2fsck-static", "busybox-static", "systemd-boot-efi"}, got); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	good := func() Board {
		b, err := Load("rpi4")
		if err != nil {
			t.Fatal(err)
		}
		return *b
	}
	tests := []struct {
		name   string
		mutate func(*Board)
		want   string
	}{
		{"short sha", func(b *Board) { b.Kernel.SHA256 = "abc" }, "sha256"},
		{"arch", func(b *Board) { b.Arch = "amd64" }, "only arm64"},
		{"table", func(b *Board) { b.Partitions.Table = "gpt" }, "dos"},
		{"boot", func(b *Board) { b.Boot = "pxe" }, "want direct"},
		{"no modules", func(b *Board) { b.Modules = nil }, "no modules"},
		{"firmware files", func(b *Board) { b.Firmware.Files = nil }, "files are required"},
	}
	for _, tt := range tests {
		b := good()
		fw := *b.Firmware
		b.Firmware = &fw
		tt.mutate(&b)
		err := b.validate("rpi4")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}
