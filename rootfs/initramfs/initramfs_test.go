package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"
)

func build(t *testing.T, order []string) *Tree {
	t.Helper()
	tr := New()
	add := map[string]func() error{
		"init":     func() error { return tr.File("/init", []byte("#!init"), 0o755) },
		"podagent": func() error { return tr.File("bin/podagent", []byte("agent"), 0o755) },
		"sh":       func() error { return tr.Symlink("/bin/sh", "/bbin/gosh") },
		"module":   func() error { return tr.File("/lib/modules/6.1/kernel/fs/ext4/ext4.ko", []byte("ko"), 0o644) },
		"tmp":      func() error { return tr.Dir("/tmp", 0o777|os.ModeSticky) },
		"console":  func() error { return tr.CharDev("/dev/console", 0o600, 5, 1) },
	}
	for _, k := range order {
		if err := add[k](); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func TestDeterministic(t *testing.T) {
	a := build(t, []string{"init", "podagent", "sh", "module", "tmp", "console"})
	b := build(t, []string{"console", "tmp", "module", "sh", "podagent", "init"})
	for _, comp := range []string{None, Gzip, Zstd} {
		var ba, bb bytes.Buffer
		if err := a.Write(&ba, comp); err != nil {
			t.Fatal(err)
		}
		if err := b.Write(&bb, comp); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ba.Bytes(), bb.Bytes()) {
			t.Errorf("%s: archives of the same tree added in different orders differ", comp)
		}
	}
}

func TestRecords(t *testing.T) {
	var buf bytes.Buffer
	if err := build(t, []string{"init", "podagent", "sh", "module", "tmp", "console"}).Write(&buf, None); err != nil {
		t.Fatal(err)
	}
	r := cpio.Newc.Reader(bytes.NewReader(buf.Bytes()))
	var got []string
	for {
		rec, err := r.ReadRecord()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.MTime != 0 || rec.UID != 0 || rec.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want zeros", rec.Name, rec.MTime, rec.UID, rec.GID)
		}
		line := rec.Name + " " + modeString(rec.Mode)
		if rec.Mode&cpio.S_IFMT == cpio.S_IFCHR {
			line += fmt.Sprintf(" %d,%d", rec.Rmajor, rec.Rminor)
		}
		if rec.Mode&cpio.S_IFMT == cpio.S_IFLNK {
			target, _ := io.ReadAll(io.NewSectionReader(rec.ReaderAt, 0, int64(rec.FileSize)))
			line += " -> " + string(target)
		}
		got = append(got, line)
	}
	want := []string{
		"bin dir 755",
		"bin/podagent file 755",
		"bin/sh link 777 -> /bbin/gosh",
		"dev dir 755",
		"dev/console chardev 600 5,1",
		"init file 755",
		"lib dir 755",
		"lib/modules dir 755",
		"lib/modules/6.1 dir 755",
		"lib/modules/6.1/kernel dir 755",
		"lib/modules/6.1/kernel/fs dir 755",
		"lib/modules/6.1/kernel/fs/ext4 dir 755",
		"lib/modules/6.1/kernel/fs/ext4/ext4.ko file 644",
		"tmp dir 1777",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}

func modeString(m uint64) string {
	kind := map[uint64]string{cpio.S_IFDIR: "dir", cpio.S_IFLNK: "link", cpio.S_IFREG: "file", cpio.S_IFCHR: "chardev"}[m&cpio.S_IFMT]
	return fmt.Sprintf("%s %o", kind, m&0o7777)
}

func TestErrors(t *testing.T) {
	tr := New()
	if err := tr.File("/init", nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tr.File("init", nil, 0o755); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("second /init: %v, want added twice", err)
	}
	if err := tr.File("/", nil, 0o755); err == nil {
		t.Error("File(/) succeeded")
	}
	if err := tr.CopyFile("/x", "/nonexistent/file", 0o644); err == nil || !strings.Contains(err.Error(), "/x") {
		t.Errorf("CopyFile(missing) = %v", err)
	}
	if err := tr.Write(io.Discard, "lz4"); err == nil {
		t.Error("Write(lz4) succeeded")
	}
}
