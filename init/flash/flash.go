// Package flash finds the board's flash (the ext4 partition labelled
// PODBOOT), checks it with e2fsck when its superblock says it was not
// cleanly unmounted, and mounts it at /flash.
//
// The label is read from the ext4 superblock here (a few fixed offsets)
// rather than through blkid: the initramfs has no libblkid, and u-root's
// block package finds partitions by GPT name or filesystem UUID but not by
// filesystem label. u-root's block package lists the block devices.
package flash

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/u-root/u-root/pkg/mount/block"
)

// superblockOffset is where the ext2/3/4 superblock starts on the device.
const superblockOffset = 1024

// ext4 superblock fields (offsets within the superblock, from the kernel's
// fs/ext4/ext4.h struct ext4_super_block).
const (
	offMtime        = 0x2C
	offWtime        = 0x30
	offMagic        = 0x38
	offState        = 0x3A
	offIncompat     = 0x60
	offVolumeName   = 0x78
	superblockBytes = 0x88
	ext4Magic       = 0xEF53

	stateValid  = 0x1 // cleanly unmounted
	stateError  = 0x2 // errors detected
	stateOrphan = 0x4 // orphans being recovered

	incompatRecover = 0x4 // journal needs replaying
)

// Superblock is what PID 1 reads from an ext4 superblock.
type Superblock struct {
	Label    string
	State    uint16
	Incompat uint32
	// Mounted and Written are the last mount and write times: a lower
	// bound for the clock on a board without an RTC.
	Mounted, Written time.Time
}

// ErrNotExt4 means the device holds no ext2/3/4 filesystem.
var ErrNotExt4 = errors.New("no ext4 superblock")

// ReadSuperblock reads the superblock of the filesystem on r.
func ReadSuperblock(r io.ReaderAt) (Superblock, error) {
	b := make([]byte, superblockBytes)
	if _, err := r.ReadAt(b, superblockOffset); err != nil {
		return Superblock{}, fmt.Errorf("read superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(b[offMagic:]) != ext4Magic {
		return Superblock{}, ErrNotExt4
	}
	name := b[offVolumeName : offVolumeName+16]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return Superblock{
		Label:    string(name),
		State:    le.Uint16(b[offState:]),
		Incompat: le.Uint32(b[offIncompat:]),
		Mounted:  time.Unix(int64(le.Uint32(b[offMtime:])), 0).UTC(),
		Written:  time.Unix(int64(le.Uint32(b[offWtime:])), 0).UTC(),
	}, nil
}

// Unclean reports why the filesystem needs e2fsck before mounting, or ""
// when it was cleanly unmounted.
func (s Superblock) Unclean() string {
	switch {
	case s.State&stateError != 0:
		return "errors recorded in the superblock"
	case s.Incompat&incompatRecover != 0:
		return "journal needs recovery (not cleanly unmounted)"
	case s.State&stateOrphan != 0:
		return "orphan inodes being recovered"
	case s.State&stateValid == 0:
		return "not cleanly unmounted"
	}
	return ""
}

// Device is a block device that holds the flash.
type Device struct {
	Path string
	Superblock
}

// Devices lists the /dev paths of the machine's block devices.
func Devices() ([]string, error) {
	devs, err := block.GetBlockDevices()
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var paths []string
	for _, d := range devs.FilterZeroSize() {
		paths = append(paths, d.DevicePath())
	}
	return paths, nil
}

// FindLabel returns the first of paths whose ext4 label is label.
// Unreadable devices (an empty CD drive) are skipped.
func FindLabel(paths []string, label string) (Device, error) {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sb, err := ReadSuperblock(f)
		f.Close()
		if err == nil && sb.Label == label {
			return Device{Path: p, Superblock: sb}, nil
		}
	}
	return Device{}, fmt.Errorf("no ext4 filesystem labelled %q on %d block devices %v", label, len(paths), paths)
}

// Wait looks for the label until timeout: a disk driver probes its
// devices in the background after its module is loaded (an SD card takes
// longest).
func Wait(list func() ([]string, error), label string, timeout, every time.Duration) (Device, error) {
	deadline := time.Now().Add(timeout)
	for {
		paths, err := list()
		if err == nil {
			var d Device
			d, err = FindLabel(paths, label)
			if err == nil {
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			return Device{}, fmt.Errorf("find flash (after %v): %w", timeout, err)
		}
		time.Sleep(every)
	}
}

// FsckResult is what e2fsck -p said, from its exit code (see e2fsck(8)).
type FsckResult struct {
	Code   int
	Output string
}

// Fixed reports whether the filesystem is usable: 0 (clean), 1 (errors
// fixed) or 2 (fixed; reboot needed, which only matters for a mounted
// root).
func (r FsckResult) Fixed() bool { return r.Code >= 0 && r.Code <= 2 }

// Meaning is e2fsck's exit code in words.
func (r FsckResult) Meaning() string {
	switch {
	case r.Code == 0:
		return "no errors"
	case r.Code == 1:
		return "errors corrected"
	case r.Code == 2:
		return "errors corrected, reboot suggested"
	case r.Code < 0:
		return "did not run"
	case r.Code&4 != 0:
		return "errors left uncorrected"
	case r.Code&8 != 0:
		return "operational error"
	}
	return fmt.Sprintf("exit code %d", r.Code)
}

// Fsck runs e2fsck -p (preen: fix what is safe without asking) on dev.
func Fsck(e2fsck, dev string) FsckResult {
	out, err := exec.Command(e2fsck, "-p", dev).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return FsckResult{Code: 0, Output: string(out)}
	case errors.As(err, &ee):
		return FsckResult{Code: ee.ExitCode(), Output: string(out)}
	}
	return FsckResult{Code: -1, Output: fmt.Sprintf("run %s: %v", e2fsck, err)}
}

// MkdirAll is os.MkdirAll, named for the mount point.
func mountPoint(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", filepath.Clean(dir), err)
	}
	return nil
}
