// Package usbstick mounts the OTA stick: PID 1 polls the board's block
// devices (there is no udev on the board), mounts a filesystem labelled
// PODBOOT-OTA (ext4 or FAT) read-only at /media/ota, and unmounts it
// lazily when the device goes away. The OTA controller reads the bundle
// there with device.yaml's `ota.source: oci-layout:/media/ota`; whether
// the bundle may run is its signature's decision, never the stick's.
//
// Labels are read from the filesystems' own headers (init/flash's ext4
// superblock reader; the FAT boot sector and root directory here) rather
// than through blkid: the initramfs has no libblkid.
package usbstick

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/podboot/podboot/init/flash"
)

// Filesystem types, as mount(2) names them.
const (
	TypeExt4 = "ext4"
	TypeVFAT = "vfat"
)

// ErrNoFilesystem means the device holds neither ext2/3/4 nor FAT.
var ErrNoFilesystem = errors.New("no ext4 or FAT filesystem")

// Filesystem is what a device's headers say.
type Filesystem struct {
	Type  string // TypeExt4 or TypeVFAT
	Label string // "" when it has none
}

// Is reports whether the filesystem carries label. FAT labels are
// compared without case (DOS stores them upper case; mkfs.vfat keeps what
// it is given); ext4's are exact, as init/flash compares them.
func (f Filesystem) Is(label string) bool {
	if f.Type == TypeVFAT {
		return strings.EqualFold(f.Label, label)
	}
	return f.Label == label
}

// ReadLabel reads the filesystem type and label of the device or image r:
// ErrNoFilesystem when it holds neither ext4 nor FAT, another error when
// it cannot be read.
func ReadLabel(r io.ReaderAt) (Filesystem, error) {
	sb, err := flash.ReadSuperblock(r)
	switch {
	case err == nil:
		return Filesystem{Type: TypeExt4, Label: sb.Label}, nil
	case !errors.Is(err, flash.ErrNotExt4) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		return Filesystem{}, err
	}
	label, err := fatLabel(r)
	if err != nil {
		return Filesystem{}, err
	}
	return Filesystem{Type: TypeVFAT, Label: label}, nil
}

// FAT boot sector (BIOS parameter block) fields, from Microsoft's FAT
// specification (fatgen103): offsets in the first sector.
const (
	bpbBytesPerSector = 0x0B // uint16
	bpbSecPerCluster  = 0x0D // uint8
	bpbReservedSecs   = 0x0E // uint16
	bpbNumFATs        = 0x10 // uint8
	bpbRootEntries    = 0x11 // uint16: 0 on FAT32
	bpbFATSize16      = 0x16 // uint16: 0 on FAT32
	bpbFATSize32      = 0x24 // uint32 (FAT32)
	bpbRootCluster    = 0x2C // uint32 (FAT32)
	bsBootSig16       = 0x26 // 0x29: the volume ID and label follow (FAT12/16)
	bsLabel16         = 0x2B
	bsBootSig32       = 0x42 // the same for FAT32
	bsLabel32         = 0x47
	bsSignature       = 0x1FE // 0x55 0xAA
	extBootSig        = 0x29
	labelLen          = 11

	dirEntrySize   = 32
	attrVolumeID   = 0x08
	attrLongName   = 0x0F
	entryFree      = 0xE5
	maxRootDirRead = 64 << 10 // bytes of the root directory searched for the label
)

// fatLabel reads a FAT12/16/32 volume label. The root directory's
// volume-label entry wins over the boot sector's copy, as in blkid: a
// label changed on Windows is only written there.
func fatLabel(r io.ReaderAt) (string, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", ErrNoFilesystem
		}
		return "", fmt.Errorf("read boot sector: %w", err)
	}
	le := binary.LittleEndian
	bytesPerSector := int64(le.Uint16(bs[bpbBytesPerSector:]))
	secPerCluster := int64(bs[bpbSecPerCluster])
	reserved := int64(le.Uint16(bs[bpbReservedSecs:]))
	numFATs := int64(bs[bpbNumFATs])
	if bs[bsSignature] != 0x55 || bs[bsSignature+1] != 0xAA ||
		!powerOfTwo(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096 ||
		!powerOfTwo(secPerCluster) || reserved == 0 || numFATs == 0 {
		return "", ErrNoFilesystem
	}
	fatSize := int64(le.Uint16(bs[bpbFATSize16:]))
	fat32 := fatSize == 0
	sigOff, labelOff := bsBootSig16, bsLabel16
	if fat32 {
		fatSize = int64(le.Uint32(bs[bpbFATSize32:]))
		sigOff, labelOff = bsBootSig32, bsLabel32
		if fatSize == 0 {
			return "", ErrNoFilesystem
		}
	}
	var label string
	if bs[sigOff] == extBootSig {
		label = fatString(bs[labelOff : labelOff+labelLen])
	}
	// The root directory: a fixed region after the FATs on FAT12/16, a
	// cluster chain on FAT32 (its first cluster is read: the label entry
	// is the first entry mkfs and Windows write).
	firstData := (reserved + numFATs*fatSize) * bytesPerSector
	rootOff, rootLen := firstData, int64(le.Uint16(bs[bpbRootEntries:]))*dirEntrySize
	if fat32 {
		rootCluster := int64(le.Uint32(bs[bpbRootCluster:]))
		if rootCluster < 2 {
			return label, nil
		}
		rootOff = firstData + (rootCluster-2)*secPerCluster*bytesPerSector
		rootLen = secPerCluster * bytesPerSector
	}
	dir := make([]byte, min(rootLen, maxRootDirRead))
	n, err := r.ReadAt(dir, rootOff)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read FAT root directory: %w", err)
	}
	for e := dir[:n-n%dirEntrySize]; len(e) >= dirEntrySize; e = e[dirEntrySize:] {
		switch {
		case e[0] == 0: // the end of the directory
			return label, nil
		case e[0] == entryFree, e[11] == attrLongName, e[11]&attrVolumeID == 0:
			continue
		}
		return fatString(e[:labelLen]), nil
	}
	return label, nil
}

// fatString is a space-padded FAT name; "NO NAME" is no label.
func fatString(b []byte) string {
	s := string(bytes.TrimRight(b, " \x00"))
	if s == "NO NAME" {
		return ""
	}
	return s
}

func powerOfTwo(n int64) bool { return n > 0 && n&(n-1) == 0 }
