package machine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseForward(t *testing.T) {
	tests := []struct {
		in      string
		want    Forward
		wantErr string
	}{
		{in: "8080:80", want: Forward{Host: 8080, Guest: 80}},
		{in: "8080", wantErr: "want HOST:GUEST"},
		{in: "x:80", wantErr: `host port: "x" is not a port number`},
		{in: "80:70000", wantErr: `guest port: "70000" is not a port number`},
	}
	for _, tt := range tests {
		got, err := ParseForward(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseForward(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseForward(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseForward(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestArgs(t *testing.T) {
	direct := Image{Disk: "/o/disk.img", Kernel: "/o/Image", Initramfs: "/o/initramfs.cpio.gz", Cmdline: "console=ttyAMA0 cgroup_no_v1=all"}
	uefi := Image{Disk: "/o/disk.img"}
	common := []string{"-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024", "-nodefaults", "-display", "none"}
	disk := []string{
		"-drive", "if=none,id=flash,format=raw,file=/o/disk.img",
		"-device", "virtio-blk-pci,drive=flash,bootindex=0",
		"-device", "virtio-rng-pci",
	}
	cat := func(parts ...[]string) []string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	tests := []struct {
		name string
		cfg  Config
		img  Image
		want []string
	}{{
		name: "kernel, console file",
		cfg:  Config{APIPort: 16443, Console: "/t/console.log"},
		img:  direct,
		want: cat(common,
			[]string{"-chardev", "file,id=console,path=/t/console.log", "-serial", "chardev:console", "-qmp", "unix:/q/qmp.sock,server=on,wait=off",
				"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:16443-:6443", "-device", "virtio-net-pci,netdev=net0,romfile="},
			disk,
			[]string{"-kernel", "/o/Image", "-initrd", "/o/initramfs.cpio.gz", "-append", "console=ttyAMA0 cgroup_no_v1=all"}),
	}, {
		name: "kernel, serial socket, monitor, forwards, debug shell, snapshot",
		cfg: Config{APIPort: 16443, Console: "/t/c,1.log", SerialSocket: "/t/serial", MonitorSocket: "/t/mon",
			Forwards: []Forward{{Host: 18080, Guest: 80}}, DebugShell: true, Append: "quiet", Snapshot: true, CPUs: 1, MemoryMiB: 512},
		img: direct,
		want: cat([]string{"-M", "virt", "-cpu", "cortex-a72", "-smp", "1", "-m", "512", "-nodefaults", "-display", "none"},
			[]string{"-chardev", "socket,id=console,path=/t/serial,server=on,wait=off,logfile=/t/c,,1.log", "-serial", "chardev:console",
				"-qmp", "unix:/q/qmp.sock,server=on,wait=off", "-qmp", "unix:/t/mon,server=on,wait=off",
				"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:16443-:6443,hostfwd=tcp:127.0.0.1:18080-:80", "-device", "virtio-net-pci,netdev=net0,romfile="},
			disk,
			[]string{"-snapshot", "-kernel", "/o/Image", "-initrd", "/o/initramfs.cpio.gz", "-append", "console=ttyAMA0 cgroup_no_v1=all podboot.debug=shell quiet"}),
	}, {
		name: "USB sticks",
		cfg:  Config{APIPort: 16443, Console: "/t/console.log", USBDisks: []string{"/t/stick.img", "/t/b,2.img"}},
		img:  direct,
		want: cat(common,
			[]string{"-chardev", "file,id=console,path=/t/console.log", "-serial", "chardev:console", "-qmp", "unix:/q/qmp.sock,server=on,wait=off",
				"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:16443-:6443", "-device", "virtio-net-pci,netdev=net0,romfile="},
			disk,
			[]string{"-device", "qemu-xhci,id=xhci",
				"-drive", "if=none,id=usbdisk0,format=raw,file=/t/stick.img", "-device", "usb-storage,bus=xhci.0,drive=usbdisk0,removable=on",
				"-drive", "if=none,id=usbdisk1,format=raw,file=/t/b,,2.img", "-device", "usb-storage,bus=xhci.0,drive=usbdisk1,removable=on"},
			[]string{"-kernel", "/o/Image", "-initrd", "/o/initramfs.cpio.gz", "-append", "console=ttyAMA0 cgroup_no_v1=all"}),
	}, {
		name: "UEFI",
		cfg:  Config{APIPort: 6443, Console: "/t/console.log"},
		img:  uefi,
		want: cat(common,
			[]string{"-chardev", "file,id=console,path=/t/console.log", "-serial", "chardev:console", "-qmp", "unix:/q/qmp.sock,server=on,wait=off",
				"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:6443-:6443", "-device", "virtio-net-pci,netdev=net0,romfile="},
			disk,
			[]string{"-bios", DefaultFirmware}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.cfg.Args(tt.img, "/q/qmp.sock")); diff != "" {
				t.Errorf("Args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{Dir: "out", APIPort: 6443, Console: "c"}, ""},
		{"no dir", Config{APIPort: 6443, Console: "c"}, "no image directory"},
		{"bad port", Config{Dir: "out", APIPort: 70000, Console: "c"}, "API port 70000"},
		{"no console", Config{Dir: "out", APIPort: 6443}, "no console file"},
		{"twice", Config{Dir: "out", APIPort: 6443, Console: "c", Forwards: []Forward{{6443, 80}}}, "host port 6443 is forwarded twice"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate() = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestInspect(t *testing.T) {
	write := func(dir string, names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(" console=ttyAMA0\n  quiet \n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("direct", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, "disk.img", "Image", "initramfs.cpio.gz", "cmdline.txt")
		got, err := Inspect(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := Image{Disk: dir + "/disk.img", Kernel: dir + "/Image", Initramfs: dir + "/initramfs.cpio.gz", Cmdline: "console=ttyAMA0 quiet"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Inspect (-want +got):\n%s", diff)
		}
	})
	t.Run("uefi", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, "disk.img")
		got, err := Inspect(dir)
		if err != nil || got.Direct() {
			t.Errorf("Inspect = %+v, %v; want a UEFI image", got, err)
		}
	})
	for name, files := range map[string][]string{
		"no disk":      {"Image"},
		"no initramfs": {"disk.img", "Image", "cmdline.txt"},
		"no cmdline":   {"disk.img", "Image", "initramfs.cpio.gz"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir, files...)
			if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), dir) {
				t.Errorf("Inspect = %v, want an error naming %s", err, dir)
			}
		})
	}
}
