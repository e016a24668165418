// Package firmware is the image builder's pipeline: for one board it
// fetches the pinned kernel and firmware packages, resolves the kernel
// modules, builds the binaries, writes the initramfs, fills the flash
// (pods, images, device.yaml, API credentials) and writes the disk image
// and the kubeconfig, printing numbered steps a person can follow.
package firmware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/boards"
	"github.com/podboot/podboot/rootfs/binaries"
	"github.com/podboot/podboot/rootfs/deb"
	"github.com/podboot/podboot/rootfs/disk"
	"github.com/podboot/podboot/rootfs/hosttools"
	"github.com/podboot/podboot/rootfs/initramfs"
	"github.com/podboot/podboot/rootfs/modules"
	"github.com/podboot/podboot/rootfs/uki"
)

// Config is one build.
type Config struct {
	Board string
	// Pods, Images: directories copied to the flash's pods/ and images/.
	Pods, Images string
	// Device is an optional device.yaml copied to the flash.
	Device string
	// Out is the output directory (out/<board>).
	Out string
	// RepoRoot is podboot's module root; CacheDir defaults to RepoRoot/.cache.
	RepoRoot, CacheDir string
	// FlashFree is the free space added to the flash's content.
	FlashFree int64
	// APIServer is the kubeconfig's server URL; empty: the board's default.
	APIServer string
	// Epoch is every timestamp in the images.
	Epoch time.Time
	// Stdout receives the progress.
	Stdout io.Writer
}

// DefaultAPIServer is the kubeconfig server per boot style: QEMU forwards
// the guest's 6443 to the host's loopback; a Pi is reached by its name.
func DefaultAPIServer(b *boards.Board) string {
	if b.Boot == boards.BootRaspberryPi {
		return "https://podboot.local:6443"
	}
	return "https://127.0.0.1:6443"
}

// build carries one build's state between steps.
type build struct {
	cfg   Config
	board *boards.Board
	arch  *boards.Arch
	out   io.Writer
	step  int
	steps int
	start time.Time

	fetcher *deb.Fetcher
	work    string // temporary directory
	kernel  string // extracted kernel package
	initrd  string // written initramfs
	image   string // kernel Image
	cmdline string
	layout  disk.Layout
	creds   *apiauth.Credentials
}

func (b *build) next(format string, args ...any) {
	b.step++
	fmt.Fprintf(b.out, "[%d/%d] %s\n", b.step, b.steps, fmt.Sprintf(format, args...))
}

func (b *build) printf(format string, args ...any) {
	fmt.Fprintf(b.out, "      %s\n", fmt.Sprintf(format, args...))
}

// Tools lists the host tools a board's build runs.
func Tools(board *boards.Board) []string {
	tools := []string{"go", "apt-get", "dpkg-deb", "sfdisk", "mkfs.ext4",
		"aarch64-linux-gnu-gcc", "pkg-config", "/usr/lib/aarch64-linux-gnu/libseccomp.a", "/usr/aarch64-linux-gnu/lib/libc.a"}
	if board.Partitions.BootMiB > 0 {
		tools = append(tools, "mkfs.vfat", "mcopy", "mmd")
	}
	if board.Boot == boards.BootUEFI {
		tools = append(tools, "aarch64-linux-gnu-objcopy")
	}
	return tools
}

// Build builds cfg.Board into cfg.Out.
func Build(ctx context.Context, cfg Config) error {
	board, err := boards.Load(cfg.Board)
	if err != nil {
		return err
	}
	arch, err := boards.LoadArch(board.Arch)
	if err != nil {
		return err
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.RepoRoot, ".cache")
	}
	if cfg.APIServer == "" {
		cfg.APIServer = DefaultAPIServer(board)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	for _, d := range []struct{ flag, dir string }{{"-pods", cfg.Pods}, {"-images", cfg.Images}} {
		if d.dir == "" {
			continue
		}
		if fi, err := os.Stat(d.dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s %s: not a directory (%v)", d.flag, d.dir, err)
		}
	}
	if cfg.Device != "" {
		if _, err := os.Stat(cfg.Device); err != nil {
			return fmt.Errorf("-device: %w", err)
		}
	}
	unlock, err := binaries.LockCache(cfg.CacheDir, cfg.Stdout)
	if err != nil {
		return err
	}
	defer unlock()
	b := &build{cfg: cfg, board: board, arch: arch, out: cfg.Stdout, steps: 8, start: time.Now()}
	b.fetcher = &deb.Fetcher{
		CacheDir: filepath.Join(cfg.CacheDir, "debs"), AptDir: filepath.Join(cfg.CacheDir, "apt"),
		Arch: board.Arch, Printf: b.printf,
	}
	fmt.Fprintf(b.out, "podboot firmware for %s (%s) -> %s\n", board.Name, board.Description, cfg.Out)
	if b.work, err = os.MkdirTemp("", "mkfirmware-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	for _, step := range []func(context.Context) error{
		b.checkTools, b.fetchKernel, b.binariesAndInitramfs, b.credentials, b.flash, b.bootFiles, b.diskImage, b.summary,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (b *build) checkTools(ctx context.Context) error {
	b.next("host tools")
	if err := hosttools.Require(hosttools.DefaultLookup, Tools(b.board)...); err != nil {
		return err
	}
	b.printf("all present")
	return nil
}

// extract fetches p and unpacks it under the cache, once.
func (b *build) extract(ctx context.Context, p boards.Package) (string, error) {
	path, err := b.fetcher.Fetch(ctx, p)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.cfg.CacheDir, b.board.Arch, "extract", strings.TrimSuffix(filepath.Base(path), ".deb"))
	if _, err := deb.Extract(ctx, path, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func (b *build) fetchKernel(ctx context.Context) error {
	k := b.board.Kernel
	b.next("kernel %s=%s", k.Name, k.Version)
	var err error
	if b.kernel, err = b.extract(ctx, k.Package); err != nil {
		return err
	}
	b.image = filepath.Join(b.kernel, k.Image)
	fi, err := os.Stat(b.image)
	if err != nil {
		return fmt.Errorf("kernel package %s: image: %w", k.Name, err)
	}
	b.printf("kernel %s (%s), release %s", k.Image, deb.Size(fi.Size()), k.Release)
	b.cmdline = b.board.CmdlineString()
	return nil
}

// moduleFiles resolves the board's modules and adds them and load.order
// to the tree.
func (b *build) moduleFiles(t *initramfs.Tree) error {
	rel := b.board.Kernel.Release
	tree, err := modules.Open(os.DirFS(filepath.Join(b.kernel, "lib", "modules", rel)))
	if err != nil {
		return err
	}
	mods, builtin, err := tree.Resolve(b.board.Modules)
	if err != nil {
		return fmt.Errorf("board %s modules: %w", b.board.Name, err)
	}
	var size int64
	for _, m := range mods {
		data, err := tree.ReadFile(m)
		if err != nil {
			return err
		}
		size += int64(len(data))
		if err := t.File("/lib/modules/"+rel+"/"+m.InstalledPath(), data, 0o644); err != nil {
			return err
		}
	}
	b.printf("modules: %d (%d named by the board, the rest dependencies), %s, load order from .modinfo", len(mods), len(b.board.Modules)-len(builtin), deb.Size(size))
	if len(builtin) > 0 {
		b.printf("built into the kernel, not loaded: %s", strings.Join(builtin, " "))
	}
	return t.File("/lib/modules/load.order", modules.LoadOrder(rel, mods), 0o644)
}

func (b *build) binariesAndInitramfs(ctx context.Context) error {
	b.next("binaries for linux/%s and the initramfs", b.board.Arch)
	bb := &binaries.Builder{RepoRoot: b.cfg.RepoRoot, CacheDir: filepath.Join(b.cfg.CacheDir, b.board.Arch), Arch: b.board.Arch, Printf: b.printf}
	t := initramfs.New()
	if _, err := os.Stat(filepath.Join(b.cfg.RepoRoot, "init", "cmd", "init")); err != nil {
		return fmt.Errorf("PID 1: ./init/cmd/init: %w", err)
	}
	for _, p := range []struct{ name, pkg, dest string }{
		{"init", "./init/cmd/init", "/init"},
		{"podagent", "./agent/cmd/podagent", "/bin/podagent"},
		{"podctl", "./tools/podctl", "/bin/podctl"},
	} {
		path, err := bb.Repo(ctx, p.name, p.pkg)
		if err != nil {
			return err
		}
		if err := t.CopyFile(p.dest, path, 0o755); err != nil {
			return err
		}
	}
	containerd, shim, err := bb.Containerd(ctx)
	if err != nil {
		return err
	}
	runc, err := bb.Runc(ctx)
	if err != nil {
		return err
	}
	for dest, src := range map[string]string{"/bin/containerd": containerd, "/bin/containerd-shim-runc-v2": shim, "/bin/runc": runc} {
		if err := t.CopyFile(dest, src, 0o755); err != nil {
			return err
		}
	}
	if err := b.cniPlugins(ctx, bb, t); err != nil {
		return err
	}
	e2fsck, err := b.extract(ctx, b.arch.E2fsckStatic)
	if err != nil {
		return err
	}
	if err := t.CopyFile("/sbin/e2fsck", filepath.Join(e2fsck, "sbin", "e2fsck.static"), 0o755); err != nil {
		return err
	}
	b.printf("e2fsck: sbin/e2fsck.static from %s=%s", b.arch.E2fsckStatic.Name, b.arch.E2fsckStatic.Version)
	bbPath, cmds, err := bb.Busybox(ctx)
	if err != nil {
		return err
	}
	if err := t.CopyFile("/bbin/bb", bbPath, 0o755); err != nil {
		return err
	}
	for _, c := range cmds {
		if err := t.Symlink("/bbin/"+c, "bb"); err != nil {
			return err
		}
	}
	// gobusybox follows /bin/sh -> /bbin/gosh to the last link and runs gosh.
	if err := t.Symlink("/bin/sh", "/bbin/gosh"); err != nil {
		return err
	}
	if err := b.moduleFiles(t); err != nil {
		return err
	}
	if err := t.File("/etc/podboot/board", []byte(b.board.Name+"\n"), 0o644); err != nil {
		return err
	}
	if err := t.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := t.CharDev("/dev/null", 0o666, 1, 3); err != nil {
		return err
	}
	for _, d := range []string{"/proc", "/sys", "/run", "/flash", "/var", "/etc", "/root", "/mnt"} {
		if err := t.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := t.Dir("/tmp", 0o777|os.ModeSticky); err != nil {
		return err
	}
	b.initrd = filepath.Join(b.work, "initramfs.cpio.gz")
	f, err := os.Create(b.initrd)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := t.Write(f, initramfs.Gzip); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	fi, _ := os.Stat(b.initrd)
	b.printf("initramfs: %s of files, %s gzip'd (%.1fs)", deb.Size(t.Size()), deb.Size(fi.Size()), time.Since(start).Seconds())
	return nil
}

// cniPluginDir is where the board's CNI plugins live: a directory of
// plugins only, the plugin path podagent gives libcni.
const cniPluginDir = "/usr/libexec/cni"

// cniPlugins adds every binary of the CNI plugin build to cniPluginDir.
func (b *build) cniPlugins(ctx context.Context, bb *binaries.Builder, t *initramfs.Tree) error {
	dir, err := bb.CNIPlugins(ctx)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("CNI plugins: %w", err)
	}
	var list []string
	for _, e := range entries {
		src := filepath.Join(dir, e.Name())
		if err := t.CopyFile(cniPluginDir+"/"+e.Name(), src, 0o755); err != nil {
			return err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		list = append(list, fmt.Sprintf("%s %s", e.Name(), deb.Size(fi.Size())))
	}
	b.printf("CNI plugins %s in %s: %s", binaries.CNIPluginsVersion, cniPluginDir, strings.Join(list, ", "))
	return nil
}

// credentials loads the board's API credentials from the cache, or makes
// them on the first build: rebuilding keeps the same CA and token, so a
// kubeconfig handed out keeps working and the image stays reproducible.
func (b *build) credentials(ctx context.Context) error {
	b.next("API credentials and kubeconfig")
	dir := filepath.Join(b.cfg.CacheDir, "credentials", b.board.Name)
	hosts := []string{"localhost", "podboot", "podboot.local"}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 0, 2, 15)}
	c, changed, err := apiauth.EnsureFlash(dir, hosts, ips)
	if err != nil {
		return fmt.Errorf("API credentials in %s: %w", dir, err)
	}
	b.creds = c
	if changed {
		b.printf("new credentials in %s (kept for later builds; delete the directory for new ones)", dir)
	} else {
		b.printf("cache hit: credentials from %s", dir)
	}
	if err := os.MkdirAll(b.cfg.Out, 0o755); err != nil {
		return err
	}
	kc := filepath.Join(b.cfg.Out, "kubeconfig")
	if err := c.WriteKubeconfig(kc, b.cfg.APIServer); err != nil {
		return err
	}
	b.printf("kubeconfig: %s (server %s, token, CA)", kc, b.cfg.APIServer)
	return nil
}

// copyTree copies the regular files of src into dst (no symlinks or
// special files: the flash holds plain files).
func copyTree(src, dst string) (files int, size int64, err error) {
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			size += int64(len(data))
			return os.WriteFile(target, data, 0o644)
		}
		return nil // symlinks and devices are not flash content
	})
	return files, size, err
}

func (b *build) flashDir() string { return filepath.Join(b.work, "flash") }

func (b *build) flash(ctx context.Context) error {
	b.next("flash content (PODBOOT)")
	dir := b.flashDir()
	for _, d := range []string{"pods", "images", ".podboot"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, c := range []struct{ name, src string }{{"pods", b.cfg.Pods}, {"images", b.cfg.Images}} {
		if c.src == "" {
			b.printf("%s/: empty (no -%s)", c.name, c.name)
			continue
		}
		n, size, err := copyTree(c.src, filepath.Join(dir, c.name))
		if err != nil {
			return fmt.Errorf("copy -%s %s to the flash: %w", c.name, c.src, err)
		}
		b.printf("%s/: %d files, %s from %s", c.name, n, deb.Size(size), c.src)
	}
	if b.cfg.Device != "" {
		data, err := os.ReadFile(b.cfg.Device)
		if err != nil {
			return fmt.Errorf("-device: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "device.yaml"), data, 0o644); err != nil {
			return err
		}
		b.printf("device.yaml from %s", b.cfg.Device)
	}
	if err := b.creds.WriteFlash(dir); err != nil {
		return err
	}
	b.printf("api/: ca.crt, ca.key, tls.crt, tls.key, token")
	return nil
}

// bootFiles stages the boot partition (or the QEMU outputs).
func (b *build) bootFiles(ctx context.Context) error {
	b.next("boot files (%s)", b.board.Boot)
	boot := filepath.Join(b.work, "boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		return err
	}
	b.printf("cmdline: %s", b.cmdline)
	switch b.board.Boot {
	case boards.BootDirect:
		for name, src := range map[string]string{"Image": b.image, "initramfs.cpio.gz": b.initrd} {
			if err := copyFile(src, filepath.Join(b.cfg.Out, name)); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(b.cfg.Out, "cmdline.txt"), []byte(b.cmdline+"\n"), 0o644)
	case boards.BootUEFI:
		stubDir, err := b.extract(ctx, b.arch.EFIStub)
		if err != nil {
			return err
		}
		cmdline := filepath.Join(b.work, "cmdline")
		osrel := filepath.Join(b.work, "os-release")
		os.WriteFile(cmdline, []byte(b.cmdline), 0o644)
		os.WriteFile(osrel, []byte("NAME=podboot\nID=podboot\nPRETTY_NAME=\"podboot ("+b.board.Name+")\"\n"), 0o644)
		efi := filepath.Join(boot, "EFI", "BOOT", "BOOTAA64.EFI")
		stub := filepath.Join(stubDir, "usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
		if err := uki.Build(ctx, "aarch64-linux-gnu-objcopy", stub, efi, uki.Sections(b.image, b.initrd, cmdline, osrel)); err != nil {
			return err
		}
		fi, _ := os.Stat(efi)
		b.printf("\\EFI\\BOOT\\BOOTAA64.EFI: unified kernel image (%s=%s stub), %s", b.arch.EFIStub.Name, b.arch.EFIStub.Version, deb.Size(fi.Size()))
		return nil
	case boards.BootRaspberryPi:
		return b.raspberryPi(ctx, boot)
	}
	return fmt.Errorf("board %s: boot %q not supported", b.board.Name, b.board.Boot)
}

func (b *build) raspberryPi(ctx context.Context, boot string) error {
	bd := b.board
	if err := copyFile(b.image, filepath.Join(boot, bd.KernelFile)); err != nil {
		return err
	}
	if err := copyFile(b.initrd, filepath.Join(boot, bd.InitramfsFile)); err != nil {
		return err
	}
	dtbDir := filepath.Join(b.kernel, "usr", "lib", "linux-image-"+bd.Kernel.Release)
	for _, d := range bd.DTBs {
		if err := copyFile(filepath.Join(dtbDir, d), filepath.Join(boot, filepath.Base(d))); err != nil {
			return fmt.Errorf("board %s DTB: %w", bd.Name, err)
		}
	}
	b.printf("DTBs: %s", strings.Join(bd.DTBs, " "))
	if fw := bd.Firmware; fw != nil {
		dir, err := b.extract(ctx, fw.Package)
		if err != nil {
			return err
		}
		for _, f := range fw.Files {
			if err := copyFile(filepath.Join(dir, fw.Dir, f), filepath.Join(boot, f)); err != nil {
				return fmt.Errorf("board %s firmware: %w", bd.Name, err)
			}
		}
		b.printf("firmware: %s from %s=%s", strings.Join(fw.Files, " "), fw.Name, fw.Version)
	}
	cfg := strings.NewReplacer("{kernel}", bd.KernelFile, "{initramfs}", bd.InitramfsFile).Replace(bd.ConfigTxt)
	if err := os.WriteFile(filepath.Join(boot, "config.txt"), []byte(cfg), 0o644); err != nil {
		return err
	}
	b.printf("config.txt: kernel=%s, initramfs %s followkernel", bd.KernelFile, bd.InitramfsFile)
	return os.WriteFile(filepath.Join(boot, "cmdline.txt"), []byte(b.cmdline+"\n"), 0o644)
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

func (b *build) diskImage(ctx context.Context) error {
	b.next("disk image")
	content, err := dirSize(b.flashDir())
	if err != nil {
		return err
	}
	// ext4 metadata (inode tables, journal) plus the free space asked for.
	flashBytes := content + content/10 + 64*disk.MiB + b.cfg.FlashFree
	bootKind := disk.KindFAT32
	if b.board.Boot == boards.BootUEFI {
		bootKind = disk.KindESP
	}
	bootBytes := int64(b.board.Partitions.BootMiB) * disk.MiB
	if bootBytes > 0 {
		need, err := dirSize(filepath.Join(b.work, "boot"))
		if err != nil {
			return err
		}
		if need+8*disk.MiB > bootBytes {
			return fmt.Errorf("board %s: boot files need %s, more than the %d MiB boot partition", b.board.Name, deb.Size(need), b.board.Partitions.BootMiB)
		}
	}
	l, err := disk.NewLayout(b.board.Partitions.Table, b.board.Name, bootKind, bootBytes, flashBytes)
	if err != nil {
		return err
	}
	b.layout = l
	img := filepath.Join(b.cfg.Out, "disk.img")
	if err := disk.Create(ctx, img, l); err != nil {
		return err
	}
	if bp, ok := l.Boot(); ok {
		label := "BOOT"
		if bootKind == disk.KindESP {
			label = "ESP"
		}
		err := disk.MkFAT(ctx, img, bp, disk.FAT{Label: label, VolumeID: disk.VolumeID(b.board.Name, "bootfs"), Src: filepath.Join(b.work, "boot"), Epoch: b.cfg.Epoch})
		if err != nil {
			return err
		}
		b.printf("partition 1: %s FAT32 %s, %d MiB at %d MiB", bp.Name, label, bp.Size/disk.MiB, bp.Start/disk.MiB)
	}
	fp := l.Flash()
	err = disk.MkExt4(ctx, img, fp, disk.Ext4{Label: "PODBOOT", UUID: disk.ID(b.board.Name, "flashfs"), HashSeed: disk.ID(b.board.Name, "hash"), Src: b.flashDir(), Epoch: b.cfg.Epoch})
	if err != nil {
		return err
	}
	b.printf("partition %d: ext4 PODBOOT, %d MiB at %d MiB (%s content, the rest free)", len(l.Partitions), fp.Size/disk.MiB, fp.Start/disk.MiB, deb.Size(content))
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	return nil
}

// gzipSize is the size of path compressed with gzip (default level): what
// a download or an SD card image archive costs.
func gzipSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n countWriter
	zw := gzip.NewWriter(&n)
	if _, err := io.Copy(zw, f); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return int64(n), nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func (b *build) summary(ctx context.Context) error {
	b.next("done in %.0fs: %s", time.Since(b.start).Seconds(), b.cfg.Out)
	entries, err := os.ReadDir(b.cfg.Out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		line := fmt.Sprintf("%-20s %10s", e.Name(), deb.Size(fi.Size()))
		if e.Name() == "disk.img" {
			gz, err := gzipSize(filepath.Join(b.cfg.Out, e.Name()))
			if err != nil {
				return err
			}
			line += fmt.Sprintf("  (sparse; %s gzip'd)", deb.Size(gz))
		}
		b.printf("%s", line)
	}
	return nil
}

// Epoch is the build's timestamp: SOURCE_DATE_EPOCH when set, else the
// commit time of the repository's HEAD, else a fixed date.
func Epoch(repo string, getenv func(string) string) (time.Time, error) {
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 315532800 { // FAT cannot store times before 1980
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970, from 1980 on", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	out, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%ct").Output()
	if n, perr := strconv.ParseInt(string(bytes.TrimSpace(out)), 10, 64); err == nil && perr == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), nil
}

// ErrNotRepo is returned by RepoRoot outside podboot's module.
var ErrNotRepo = errors.New("not inside podboot's repository (no go.mod of github.com/podboot/podboot above)")

// RepoRoot walks up from dir to podboot's go.mod.
func RepoRoot(dir string) (string, error) {
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && slices.Contains(strings.Fields(string(data)), "github.com/podboot/podboot") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNotRepo
		}
		dir = parent
	}
}
