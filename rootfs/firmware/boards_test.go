package firmware

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/pe"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/podboot/podboot/boards"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/rootfs/initramfs"
)

// The partition type GUIDs and MBR ids sfdisk --json reports.
const (
	mbrFAT32LBA = "c"
	mbrLinux    = "83"
	gptESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	gptLinux    = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

type partition struct {
	Start, Size int64
	Type        string
	Bootable    bool
	Name        string
}

// buildBoard runs the real pipeline for board with the repository's
// example pods and a tiny images/ directory, into a temporary directory.
func buildBoard(t *testing.T, board string) string {
	t.Helper()
	if testing.Short() {
		testenv.Unavailable(t, "builds a firmware image: a minute on a warm cache; not run with -short")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	board0, err := boards.Load(board)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range Tools(board0) {
		if _, err := os.Stat(tool); err == nil {
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "needs %s (make deps)", tool)
		}
	}
	images := t.TempDir()
	if err := os.WriteFile(filepath.Join(images, "placeholder.tar"), []byte("not an archive: the builder copies images as they are"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), board)
	var log bytes.Buffer
	err = Build(t.Context(), Config{
		Board: board, Pods: filepath.Join(root, "examples", "pods"), Images: images,
		Out: out, RepoRoot: root, FlashFree: 8 << 20,
		Epoch: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Stdout: &log,
	})
	if err != nil {
		t.Fatalf("build %s: %v\n%s", board, err, log.String())
	}
	for _, step := range []string{"[1/8] host tools", "[3/8] binaries", "[7/8] disk image", "[8/8] done"} {
		if !strings.Contains(log.String(), step) {
			t.Errorf("build progress lacks %q:\n%s", step, log.String())
		}
	}
	return out
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

func partitions(t *testing.T, img string) (string, []partition) {
	t.Helper()
	var table struct {
		PartitionTable struct {
			Label      string
			Partitions []partition
		}
	}
	if err := json.Unmarshal([]byte(run(t, "sfdisk", "--json", img)), &table); err != nil {
		t.Fatal(err)
	}
	return table.PartitionTable.Label, table.PartitionTable.Partitions
}

// fatFiles lists the FAT partition's root (mdir -b prints ::/NAME lines).
func fatFiles(t *testing.T, img string, p partition, dir string) []string {
	t.Helper()
	var names []string
	for _, l := range strings.Split(run(t, "mdir", "-b", "-i", fmt.Sprintf("%s@@%d", img, p.Start*512), "::"+dir), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, strings.TrimPrefix(l, "::"+strings.TrimSuffix(dir, "/")+"/"))
		}
	}
	return names
}

func fatRead(t *testing.T, img string, p partition, name string) []byte {
	t.Helper()
	return []byte(run(t, "mtype", "-i", fmt.Sprintf("%s@@%d", img, p.Start*512), "::"+name))
}

func fatCopy(t *testing.T, img string, p partition, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(name))
	run(t, "mcopy", "-i", fmt.Sprintf("%s@@%d", img, p.Start*512), "::"+name, dst)
	return dst
}

// checkFlash: the last partition is the ext4 PODBOOT with the pods.
func checkFlash(t *testing.T, img string, p partition) {
	t.Helper()
	ext := fmt.Sprintf("%s?offset=%d", img, p.Start*512)
	if got := run(t, "dumpe2fs", "-h", ext); !strings.Contains(got, "Filesystem volume name:   PODBOOT") {
		t.Errorf("flash partition: no ext4 labelled PODBOOT:\n%s", got)
	}
	for _, f := range []string{"/pods/web.yaml", "/pods/counter.yaml", "/images/placeholder.tar", "/api/token", "/api/tls.crt"} {
		if got := run(t, "debugfs", "-R", "stat "+f, ext); !strings.Contains(got, "Type: regular") {
			t.Errorf("flash: %s missing:\n%s", f, got)
		}
	}
	run(t, "e2fsck", "-fn", ext)
}

// checkKernel: an arm64 Image ("ARM\x64" at offset 56 of the header).
func checkKernel(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 64 || binary.LittleEndian.Uint32(data[56:]) != 0x644d5241 {
		t.Errorf("%s is not an arm64 kernel Image", path)
	}
}

// checkInitramfs: a gzip'd newc cpio holding PID 1 and the services.
func checkInitramfs(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(data)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	for _, p := range cniPluginProblems(recs) {
		t.Errorf("initramfs %s: %s", path, p)
	}
	for _, want := range []string{"init", "bin/podagent", "bin/containerd", "bin/containerd-shim-runc-v2", "bin/runc", "bin/sh", "sbin/e2fsck", "lib/modules/load.order", "dev/console", "etc/podboot/board"} {
		if !slices.Contains(names, want) {
			t.Errorf("initramfs %s lacks %s", path, want)
		}
	}
}

// cniPlugins are the plugins the board's pod network needs, in
// cniPluginDir.
var cniPlugins = []string{"bridge", "host-local"}

// cniPluginProblems lists what is wrong with the CNI plugins among an
// initramfs's records: each must be a regular, executable arm64 ELF
// executable.
func cniPluginProblems(recs []cpio.Record) []string {
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	var problems []string
	for _, p := range cniPlugins {
		name := strings.TrimPrefix(cniPluginDir, "/") + "/" + p
		r, ok := byName[name]
		switch {
		case !ok:
			problems = append(problems, name+" missing")
			continue
		case r.Mode&cpio.S_IFMT != cpio.S_IFREG || r.Mode&0o111 == 0:
			problems = append(problems, fmt.Sprintf("%s: mode %#o, want an executable regular file", name, r.Mode))
			continue
		}
		f, err := elf.NewFile(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: not ELF: %v", name, err))
			continue
		}
		if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
			problems = append(problems, fmt.Sprintf("%s: %v %v, want EM_AARCH64 ET_EXEC", name, f.Machine, f.Type))
		}
	}
	return problems
}

// elfHeader is a bare ELF64 little-endian header (no sections, no
// program headers), enough for debug/elf to read the machine and type.
func elfHeader(machine elf.Machine, typ elf.Type) []byte {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(h[16:], uint16(typ))
	binary.LittleEndian.PutUint16(h[18:], uint16(machine))
	binary.LittleEndian.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	binary.LittleEndian.PutUint16(h[52:], 64) // e_ehsize
	return h
}

func TestCNIPluginProblems(t *testing.T) {
	arm64 := elfHeader(elf.EM_AARCH64, elf.ET_EXEC)
	tree := func(edit func(files map[string][]byte, modes map[string]os.FileMode)) []cpio.Record {
		files, modes := map[string][]byte{}, map[string]os.FileMode{}
		for _, p := range cniPlugins {
			files[p], modes[p] = arm64, 0o755
		}
		edit(files, modes)
		tr := initramfs.New()
		for name, data := range files {
			if err := tr.File(cniPluginDir+"/"+name, data, modes[name]); err != nil {
				t.Fatal(err)
			}
		}
		return tr.Records()
	}
	for _, tc := range []struct {
		name  string
		edit  func(files map[string][]byte, modes map[string]os.FileMode)
		wants string // in the one problem; "" for none
	}{
		{"all four arm64 executables", func(map[string][]byte, map[string]os.FileMode) {}, ""},
		{"host-local missing", func(f map[string][]byte, _ map[string]os.FileMode) { delete(f, "host-local") }, "usr/libexec/cni/host-local missing"},
		{"bridge built for amd64", func(f map[string][]byte, _ map[string]os.FileMode) {
			f["bridge"] = elfHeader(elf.EM_X86_64, elf.ET_EXEC)
		}, "EM_X86_64"},
		{"loopback not executable", func(_ map[string][]byte, m map[string]os.FileMode) { m["host-local"] = 0o644 }, "want an executable"},
		{"host-local a script", func(f map[string][]byte, _ map[string]os.FileMode) { f["host-local"] = []byte("#!/bin/sh\n") }, "not ELF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cniPluginProblems(tree(tc.edit))
			if tc.wants == "" && len(got) > 0 || tc.wants != "" && (len(got) != 1 || !strings.Contains(got[0], tc.wants)) {
				t.Errorf("problems %q, want one naming %q", got, tc.wants)
			}
		})
	}
}

func TestIntegrationRaspberryPiImages(t *testing.T) {
	for _, tc := range []struct {
		board, kernel, console string
		files                  []string // on the boot partition
		config                 []string // lines of config.txt
	}{
		{
			board: "rpi4", kernel: "vmlinuz", console: "console=ttyS1,115200",
			files:  []string{"bootcode.bin", "start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb", "config.txt", "cmdline.txt", "vmlinuz", "initramfs.cpio.gz"},
			config: []string{"arm_64bit=1", "enable_uart=1", "kernel=vmlinuz", "initramfs initramfs.cpio.gz followkernel"},
		},
		{
			board: "rpi5", kernel: "kernel_2712.img", console: "console=ttyAMA10,115200",
			files:  []string{"bcm2712-rpi-5-b.dtb", "config.txt", "cmdline.txt", "kernel_2712.img", "initramfs.cpio.gz"},
			config: []string{"arm_64bit=1", "kernel=kernel_2712.img", "initramfs initramfs.cpio.gz followkernel", "device_tree=bcm2712-rpi-5-b.dtb"},
		},
	} {
		t.Run(tc.board, func(t *testing.T) {
			out := buildBoard(t, tc.board)
			img := filepath.Join(out, "disk.img")
			label, parts := partitions(t, img)
			// The Pi's boot ROM reads an MBR whose first partition is FAT.
			if label != "dos" || len(parts) != 2 {
				t.Fatalf("partition table %s with %d partitions, want dos with 2: %+v", label, len(parts), parts)
			}
			if parts[0].Type != mbrFAT32LBA || !parts[0].Bootable || parts[1].Type != mbrLinux {
				t.Errorf("partitions %+v, want 1: FAT32 LBA (c) bootable, 2: Linux (83)", parts)
			}
			got := fatFiles(t, img, parts[0], "/")
			for _, f := range tc.files {
				if !slices.Contains(got, f) {
					t.Errorf("boot partition lacks %s; has %v", f, got)
				}
			}
			cfg := string(fatRead(t, img, parts[0], "/config.txt"))
			for _, line := range tc.config {
				if !slices.Contains(strings.Split(cfg, "\n"), line) {
					t.Errorf("config.txt lacks the line %q:\n%s", line, cfg)
				}
			}
			cmdline := string(fatRead(t, img, parts[0], "/cmdline.txt"))
			// The firmware reads one line: everything on it, newline last.
			if strings.Count(cmdline, "\n") != 1 || !strings.HasSuffix(cmdline, "\n") {
				t.Errorf("cmdline.txt is not one line: %q", cmdline)
			}
			for _, arg := range []string{tc.console, "cgroup_no_v1=all", "podboot.flash=LABEL=PODBOOT"} {
				if !slices.Contains(strings.Fields(cmdline), arg) {
					t.Errorf("cmdline.txt lacks %s: %q", arg, cmdline)
				}
			}
			checkKernel(t, fatCopy(t, img, parts[0], "/"+tc.kernel))
			checkInitramfs(t, fatCopy(t, img, parts[0], "/initramfs.cpio.gz"))
			checkFlash(t, img, parts[1])
			kc, err := os.ReadFile(filepath.Join(out, "kubeconfig"))
			if err != nil || !strings.Contains(string(kc), "server: https://podboot.local:6443") {
				t.Errorf("kubeconfig: %v\n%s", err, kc)
			}
		})
	}
}

func TestIntegrationGenericArm64Image(t *testing.T) {
	out := buildBoard(t, "generic-arm64")
	img := filepath.Join(out, "disk.img")
	label, parts := partitions(t, img)
	if label != "gpt" || len(parts) != 2 || parts[0].Type != gptESP || parts[1].Type != gptLinux {
		t.Fatalf("partition table %s %+v, want gpt: ESP, Linux filesystem", label, parts)
	}
	efi := fatCopy(t, img, parts[0], "/EFI/BOOT/BOOTAA64.EFI")
	f, err := pe.Open(efi)
	if err != nil {
		t.Fatalf("BOOTAA64.EFI: %v", err)
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
		t.Errorf("BOOTAA64.EFI machine %#x, want arm64", f.Machine)
	}
	for _, s := range []string{".linux", ".initrd", ".cmdline"} {
		if f.Section(s) == nil {
			t.Errorf("BOOTAA64.EFI has no %s section: not a unified kernel image", s)
		}
	}
	if s := f.Section(".cmdline"); s != nil {
		data, _ := s.Data()
		if !strings.Contains(string(data), "podboot.flash=LABEL=PODBOOT") {
			t.Errorf(".cmdline = %q", data)
		}
	}
	checkFlash(t, img, parts[1])
}
