// Package disk writes partitioned disk images without root or loop devices:
// sfdisk on a sparse file, mkfs.ext4 -d into a partition at its byte offset,
// mkfs.vfat --offset and mtools (img@@offset) for FAT partitions.
//
// Images are reproducible: disk and partition identifiers derive from a
// seed (the board name), filesystem UUIDs and the ext4 directory hash seed
// are fixed, and every timestamp is the build epoch (E2FSPROGS_FAKE_TIME,
// SOURCE_DATE_EPOCH for mtools, mkfs.vfat --invariant, file mtimes).
package disk

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// MiB is the alignment of every partition.
	MiB = 1 << 20
	// Sector is the logical sector size.
	Sector = 512
)

// Partition kinds.
const (
	KindESP   = "esp"   // EFI system partition (FAT32)
	KindFAT32 = "fat32" // FAT32 (MBR type 0c: what the Raspberry Pi boot ROM reads)
	KindLinux = "linux" // Linux filesystem (ext4)
)

// Partition is one partition of a Layout.
type Partition struct {
	Name  string // GPT partition name; the filesystem label by convention
	Kind  string
	Start int64 // bytes, MiB-aligned
	Size  int64 // bytes, MiB multiple
	// UUID is the GPT partition UUID (ignored for dos tables).
	UUID     string
	Bootable bool
}

// Layout is a partition table and its disk.
type Layout struct {
	Table      string // "gpt" or "dos"
	DiskID     string // GPT disk GUID, or the dos disk identifier (0x........)
	Size       int64
	Partitions []Partition
}

// ID returns a stable UUID (version 4 layout) derived from seed and what.
func ID(seed, what string) string {
	h := sha256.Sum256([]byte("podboot\x00" + seed + "\x00" + what))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// VolumeID returns a stable 32-bit FAT volume id (8 hex digits).
func VolumeID(seed, what string) string {
	return strings.ReplaceAll(ID(seed, what), "-", "")[:8]
}

func roundMiB(n int64) int64 { return (n + MiB - 1) / MiB * MiB }

// NewLayout lays out an optional boot partition (bootBytes > 0, kind
// bootKind) followed by the flash (label PODBOOT, ext4), from 1 MiB, with
// 1 MiB left at the end for the GPT backup header.
func NewLayout(table, seed string, bootKind string, bootBytes, flashBytes int64) (Layout, error) {
	if table != "gpt" && table != "dos" {
		return Layout{}, fmt.Errorf("partition table %q: want gpt or dos", table)
	}
	if flashBytes <= 0 {
		return Layout{}, fmt.Errorf("flash size %d: must be positive", flashBytes)
	}
	l := Layout{Table: table, DiskID: ID(seed, "disk")}
	if table == "dos" {
		l.DiskID = "0x" + VolumeID(seed, "disk")
	}
	off := int64(MiB)
	if bootBytes > 0 {
		p := Partition{Name: "BOOT", Kind: bootKind, Start: off, Size: roundMiB(bootBytes), UUID: ID(seed, "boot"), Bootable: table == "dos"}
		if bootKind == KindESP {
			p.Name = "ESP"
		}
		l.Partitions = append(l.Partitions, p)
		off += p.Size
	}
	flash := Partition{Name: "PODBOOT", Kind: KindLinux, Start: off, Size: roundMiB(flashBytes), UUID: ID(seed, "flash")}
	l.Partitions = append(l.Partitions, flash)
	l.Size = off + flash.Size + MiB
	return l, nil
}

// Flash is the PODBOOT partition.
func (l Layout) Flash() Partition { return l.Partitions[len(l.Partitions)-1] }

// Boot is the boot partition, if any.
func (l Layout) Boot() (Partition, bool) {
	if len(l.Partitions) < 2 {
		return Partition{}, false
	}
	return l.Partitions[0], true
}

// gptTypes and dosTypes map partition kinds to sfdisk type codes.
var (
	gptTypes = map[string]string{
		KindESP:   "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
		KindFAT32: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
		KindLinux: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
	}
	dosTypes = map[string]string{KindESP: "ef", KindFAT32: "c", KindLinux: "83"}
)

// SfdiskScript is the sfdisk input for the layout.
func (l Layout) SfdiskScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: %s\nlabel-id: %s\nunit: sectors\n", l.Table, l.DiskID)
	if l.Table == "gpt" {
		b.WriteString("first-lba: 2048\n")
	}
	b.WriteString("\n")
	for _, p := range l.Partitions {
		fmt.Fprintf(&b, "start=%d, size=%d", p.Start/Sector, p.Size/Sector)
		if l.Table == "gpt" {
			fmt.Fprintf(&b, ", type=%s, uuid=%s, name=%q", gptTypes[p.Kind], strings.ToUpper(p.UUID), p.Name)
		} else {
			fmt.Fprintf(&b, ", type=%s", dosTypes[p.Kind])
			if p.Bootable {
				b.WriteString(", bootable")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func run(ctx context.Context, env []string, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Create writes a sparse image of the layout's size with its partition
// table.
func Create(ctx context.Context, path string, l Layout) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("create disk image %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create disk image %s: %w", path, err)
	}
	if err := f.Truncate(l.Size); err != nil {
		f.Close()
		return fmt.Errorf("create disk image %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create disk image %s: %w", path, err)
	}
	if err := run(ctx, nil, l.SfdiskScript(), "sfdisk", "--no-reread", "--no-tell-kernel", "-q", "--wipe", "always", path); err != nil {
		return fmt.Errorf("partition %s: %w", path, err)
	}
	return nil
}

// SetTimes sets the access and modification time of everything under dir
// to epoch (mkfs.ext4 -d and mcopy -m copy them).
func SetTimes(dir string, epoch time.Time) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		return os.Chtimes(p, epoch, epoch)
	})
}

// Ext4 describes an ext4 filesystem to write.
type Ext4 struct {
	Label    string
	UUID     string
	HashSeed string
	// Src is copied into the filesystem (mkfs.ext4 -d).
	Src   string
	Epoch time.Time
}

// MkExt4 writes an ext4 filesystem with src's content into partition p of
// image img.
func MkExt4(ctx context.Context, img string, p Partition, e Ext4) error {
	if err := SetTimes(e.Src, e.Epoch); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w", e.Label, err)
	}
	env := []string{"E2FSPROGS_FAKE_TIME=" + strconv.FormatInt(e.Epoch.Unix(), 10), "MKE2FS_CONFIG=/etc/mke2fs.conf"}
	args := []string{"mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-L", e.Label, "-U", e.UUID,
		// lazy_itable_init=0: the inode tables are zeroed here, once, instead
		// of by the board's first mount (20 MiB of card writes, docs/wear.md).
		"-E", fmt.Sprintf("offset=%d,hash_seed=%s,nodiscard,root_owner=0:0,lazy_itable_init=0", p.Start, e.HashSeed),
		"-d", e.Src, img, strconv.FormatInt(p.Size/1024, 10) + "k"}
	if err := run(ctx, env, "", args...); err != nil {
		return fmt.Errorf("write ext4 %s: %w", e.Label, err)
	}
	// mke2fs 1.47.0 copies each file's ctime and atime as the source has
	// them, not E2FSPROGS_FAKE_TIME: the ctime is when SetTimes ran and the
	// atime when mke2fs read the directory, so two builds a second apart
	// differed. debugfs sets both to the epoch.
	script, err := epochScript(e.Src, e.Epoch)
	if err != nil {
		return fmt.Errorf("write ext4 %s: %w", e.Label, err)
	}
	if err := debugfs(ctx, fmt.Sprintf("%s?offset=%d", img, p.Start), script); err != nil {
		return fmt.Errorf("write ext4 %s: set times: %w", e.Label, err)
	}
	return nil
}

// debugfs runs requests on a filesystem opened for writing. debugfs exits
// 0 whatever its requests do; an error is a line on stderr other than its
// version banner.
func debugfs(ctx context.Context, fsys, requests string) error {
	cmd := exec.CommandContext(ctx, "debugfs", "-w", "-f", "-", fsys)
	cmd.Stdin = strings.NewReader(requests)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debugfs %s: %w: %s", fsys, err, strings.TrimSpace(stderr.String()))
	}
	var problems []string
	for line := range strings.Lines(stderr.String()) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			problems = append(problems, line)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("debugfs %s: %s", fsys, strings.Join(problems, "; "))
	}
	return nil
}

// epochScript is the debugfs requests that set the ctime and atime of
// every file under src, as copied into the filesystem's root, to epoch.
func epochScript(src string, epoch time.Time) (string, error) {
	var b strings.Builder
	at := "@" + strconv.FormatInt(epoch.Unix(), 10)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := "/" + filepath.ToSlash(rel)
		if rel == "." {
			name = "/"
		}
		if strings.ContainsAny(name, " \"\n") {
			return fmt.Errorf("file name %q: debugfs cannot name it", name)
		}
		for _, field := range []string{"ctime", "atime"} {
			fmt.Fprintf(&b, "set_inode_field %s %s %s\n", name, field, at)
		}
		return nil
	})
	return b.String(), err
}

// FAT describes a FAT32 filesystem to write.
type FAT struct {
	Label    string // up to 11 characters
	VolumeID string // 8 hex digits
	// Src's files and directories are copied to the root.
	Src   string
	Epoch time.Time
}

// MkFAT writes a FAT32 filesystem into partition p of img and copies Src
// into it with mtools.
func MkFAT(ctx context.Context, img string, p Partition, f FAT) error {
	// Small clusters keep a small partition well above FAT32's minimum
	// cluster count (65525): at the edge, mkfs.fat warns and mtools then
	// reads the volume as FAT16 with no root directory slots.
	spc := int64(8)
	for spc > 1 && p.Size/(Sector*spc) < 2*65525 {
		spc /= 2
	}
	args := []string{"mkfs.vfat", "-F", "32", "-S", "512", "-s", strconv.FormatInt(spc, 10), "-n", f.Label, "-i", f.VolumeID, "--invariant",
		"--offset=" + strconv.FormatInt(p.Start/Sector, 10), img, strconv.FormatInt(p.Size/1024, 10)}
	if err := run(ctx, nil, "", args...); err != nil {
		return fmt.Errorf("write FAT %s: %w", f.Label, err)
	}
	if err := SetTimes(f.Src, f.Epoch); err != nil {
		return fmt.Errorf("write FAT %s: %w", f.Label, err)
	}
	target := fmt.Sprintf("%s@@%d", img, p.Start)
	env := []string{"MTOOLS_SKIP_CHECK=1", "SOURCE_DATE_EPOCH=" + strconv.FormatInt(f.Epoch.Unix(), 10)}
	// Directories first (mmd), then files, each in sorted order, so the
	// directory entries land in the same order every time.
	var dirs, files []string
	err := filepath.WalkDir(f.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == f.Src {
			return err
		}
		rel, _ := filepath.Rel(f.Src, p)
		if d.IsDir() {
			dirs = append(dirs, rel)
		} else {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write FAT %s: %w", f.Label, err)
	}
	slices.Sort(dirs)
	slices.Sort(files)
	for _, d := range dirs {
		if err := run(ctx, env, "", "mmd", "-i", target, "::/"+filepath.ToSlash(d)); err != nil {
			return fmt.Errorf("write FAT %s: %w", f.Label, err)
		}
	}
	for _, file := range files {
		if err := run(ctx, env, "", "mcopy", "-i", target, "-m", "-Q", filepath.Join(f.Src, file), "::/"+filepath.ToSlash(file)); err != nil {
			return fmt.Errorf("write FAT %s: %w", f.Label, err)
		}
	}
	return nil
}
