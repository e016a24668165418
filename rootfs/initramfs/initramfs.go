// Package initramfs assembles the firmware's initramfs as a newc cpio
// archive with u-root's pkg/cpio, deterministically: entries sorted by path,
// every parent directory present, mtime 0, owner 0:0, inode numbers in
// order. The same tree gives the same bytes.
package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

type entry struct {
	mode         uint64 // cpio.S_IF* | perm
	data         []byte
	target       string // symlink
	major, minor uint64 // character device
}

// Tree is the initramfs content.
type Tree struct {
	entries map[string]entry
}

// New returns an empty tree.
func New() *Tree { return &Tree{entries: map[string]entry{}} }

func clean(name string) (string, error) {
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	if n == "" || n == "." {
		return "", fmt.Errorf("initramfs entry %q: not a path below /", name)
	}
	return n, nil
}

func (t *Tree) add(name string, e entry) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if old, ok := t.entries[n]; ok && !(old.mode&cpio.S_IFMT == cpio.S_IFDIR && e.mode&cpio.S_IFMT == cpio.S_IFDIR) {
		return fmt.Errorf("initramfs entry /%s: added twice", n)
	}
	t.entries[n] = e
	return nil
}

// File adds a regular file.
func (t *Tree) File(name string, data []byte, perm os.FileMode) error {
	return t.add(name, entry{mode: cpio.S_IFREG | unixPerm(perm), data: data})
}

// CopyFile adds a regular file with the content of host file src.
func (t *Tree) CopyFile(name, src string, perm os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("initramfs entry /%s: %w", strings.TrimPrefix(name, "/"), err)
	}
	return t.File(name, data, perm)
}

// Symlink adds a symbolic link.
func (t *Tree) Symlink(name, target string) error {
	return t.add(name, entry{mode: cpio.S_IFLNK | 0o777, target: target})
}

// CharDev adds a character device node: /dev/console must exist in the
// initramfs for the kernel to give PID 1 a console (no devtmpfs is mounted
// before init runs).
func (t *Tree) CharDev(name string, perm os.FileMode, major, minor uint64) error {
	return t.add(name, entry{mode: cpio.S_IFCHR | unixPerm(perm), major: major, minor: minor})
}

// Dir adds a directory (parents of other entries are added as 0755).
func (t *Tree) Dir(name string, perm os.FileMode) error {
	return t.add(name, entry{mode: cpio.S_IFDIR | unixPerm(perm)})
}

// unixPerm is the permission bits of m as in stat(2): Go keeps the
// sticky, setuid and setgid bits apart from Perm().
func unixPerm(m os.FileMode) uint64 {
	p := uint64(m.Perm())
	if m&os.ModeSticky != 0 {
		p |= 0o1000
	}
	if m&os.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&os.ModeSetuid != 0 {
		p |= 0o4000
	}
	return p
}

// Size is the total size of the file contents.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.entries {
		n += int64(len(e.data))
	}
	return n
}

// Records returns the archive's records in order, parents included.
func (t *Tree) Records() []cpio.Record {
	all := map[string]entry{}
	for n, e := range t.entries {
		all[n] = e
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				if te, ok := t.entries[d]; ok {
					all[d] = te
				} else {
					all[d] = entry{mode: cpio.S_IFDIR | 0o755}
				}
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	slices.Sort(names)
	recs := make([]cpio.Record, 0, len(names))
	for i, n := range names {
		e := all[n]
		info := cpio.Info{Name: n, Mode: e.mode, Ino: uint64(i + 1), NLink: 1}
		switch e.mode & cpio.S_IFMT {
		case cpio.S_IFDIR:
			info.NLink = 2
			recs = append(recs, cpio.Record{Info: info})
		case cpio.S_IFCHR:
			info.Rmajor, info.Rminor = e.major, e.minor
			recs = append(recs, cpio.Record{Info: info})
		case cpio.S_IFLNK:
			recs = append(recs, cpio.StaticRecord([]byte(e.target), info))
		default:
			recs = append(recs, cpio.StaticRecord(e.data, info))
		}
	}
	return recs
}

// WriteCPIO writes the uncompressed newc archive, with its trailer.
func (t *Tree) WriteCPIO(w io.Writer) error {
	rw := cpio.Newc.Writer(w)
	if err := cpio.WriteRecords(rw, t.Records()); err != nil {
		return fmt.Errorf("write cpio: %w", err)
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("write cpio: %w", err)
	}
	return nil
}

// Compression names.
const (
	Gzip = "gzip"
	Zstd = "zstd"
	None = "none"
)

// Write writes the archive compressed with comp (Gzip, Zstd or None).
// The gzip header carries no name and no time.
func (t *Tree) Write(w io.Writer, comp string) error {
	var buf bytes.Buffer
	if err := t.WriteCPIO(&buf); err != nil {
		return err
	}
	switch comp {
	case None:
		_, err := w.Write(buf.Bytes())
		return err
	case Gzip:
		zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("gzip initramfs: %w", err)
		}
		return zw.Close()
	case Zstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
		if _, err := zw.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("zstd initramfs: %w", err)
		}
		return zw.Close()
	}
	return fmt.Errorf("initramfs compression %q: want %s, %s or %s", comp, Gzip, Zstd, None)
}
