package flashwear

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/podboot/podboot/qemu/e2e"
)

// File is what a snapshot knows of one file or directory of the flash.
type File struct {
	Inode int    `json:"inode"`
	Dir   bool   `json:"dir"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"` // seconds; what a write changes
	Ctime int64  `json:"ctime"` // what any change of the inode changes
	Atime int64  `json:"atime"` // what a read changes (relatime: once a day)
	Hash  string `json:"hash,omitempty"`
}

// Files maps the flash's paths ("/pods/web.yaml") to what they were.
type Files map[string]File

// hashLimit: files up to this size are hashed; the image archives are
// not (they change by size and times if they change at all).
const hashLimit = 1 << 20

// SnapshotFiles copies the flash partition of a running board's disk
// image, replays its journal on the copy (what a power cut would leave: every committed
// transaction), and lists every file of the flash with its inode, size,
// times and (for small files) a hash of its content. It reads the copy
// with e2fsprogs, as the e2e tests do, so the running guest is untouched.
func SnapshotFiles(disk, scratch string) (Files, error) {
	fl, err := e2e.FindFlash(disk)
	if err != nil {
		return nil, fmt.Errorf("snapshot flash: %w", err)
	}
	// The partition alone, in a file of its own: e2fsck re-opens the
	// device after replaying the journal and loses an ?offset= on the way.
	spec := filepath.Join(scratch, "flash-snapshot.img")
	defer os.Remove(spec)
	if err := copyFrom(disk, fl.Offset, spec); err != nil {
		return nil, fmt.Errorf("snapshot flash: %w", err)
	}
	// Exit status 1 is "file system corrected" (the journal replayed).
	if out, err := exec.Command("e2fsck", "-y", "-E", "journal_only", spec).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
			return nil, fmt.Errorf("snapshot flash: replay the journal of %s: %w: %s", spec, err, out)
		}
	}
	files := Files{}
	type entry struct {
		path  string
		inode int
		dir   bool
		size  int64
	}
	var all []entry
	dirs := []string{"/"}
	for len(dirs) > 0 {
		dir := dirs[0]
		dirs = dirs[1:]
		out, err := debugfs(spec, "ls -p "+dir)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(out, "\n") {
			// ls -p: /inode/mode/uid/gid/name/size/
			f := strings.Split(strings.TrimSpace(line), "/")
			if len(f) < 8 || f[5] == "." || f[5] == ".." || f[5] == "" {
				continue
			}
			ino, err1 := strconv.Atoi(f[1])
			mode, err2 := strconv.ParseUint(f[2], 8, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			size, _ := strconv.ParseInt(f[6], 10, 64)
			p := path.Join(dir, f[5])
			isDir := mode&0o170000 == 0o040000
			all = append(all, entry{p, ino, isDir, size})
			if isDir && p != "/lost+found" {
				dirs = append(dirs, p)
			}
		}
	}
	all = append(all, entry{"/", 2, true, 0})
	var reqs []string
	for _, e := range all {
		reqs = append(reqs, fmt.Sprintf("stat <%d>", e.inode))
	}
	out, err := debugfs(spec, reqs...)
	if err != nil {
		return nil, err
	}
	times := parseStats(out)
	for _, e := range all {
		t, ok := times[e.inode]
		if !ok {
			return nil, fmt.Errorf("snapshot flash: no stat of %s (inode %d) in debugfs's output", e.path, e.inode)
		}
		f := File{Inode: e.inode, Dir: e.dir, Size: e.size, Mtime: t.mtime, Ctime: t.ctime, Atime: t.atime}
		if !e.dir && e.size <= hashLimit {
			data, err := exec.Command("debugfs", "-R", fmt.Sprintf("cat <%d>", e.inode), spec).Output()
			if err != nil {
				return nil, fmt.Errorf("snapshot flash: read %s: %w", e.path, err)
			}
			sum := sha256.Sum256(data)
			f.Hash = hex.EncodeToString(sum[:8])
		}
		files[e.path] = f
	}
	return files, nil
}

// copyFrom copies src from offset to its end into a new sparse file dst:
// blocks of zeros are skipped, so a mostly empty flash copies quickly.
func copyFrom(src string, offset int64, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	var pos int64
	for {
		n, err := in.ReadAt(buf, offset+pos)
		if n > 0 {
			chunk := buf[:n]
			if !allZero(chunk) {
				if _, werr := out.WriteAt(chunk, pos); werr != nil {
					return fmt.Errorf("copy %s to %s: %w", src, dst, werr)
				}
			}
			pos += int64(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	if err := out.Truncate(pos); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// debugfs runs requests against spec, read-only, and returns the output.
func debugfs(spec string, requests ...string) (string, error) {
	script, err := os.CreateTemp("", "flashwear-debugfs")
	if err != nil {
		return "", err
	}
	defer os.Remove(script.Name())
	fmt.Fprintln(script, strings.Join(requests, "\n"))
	script.Close()
	out, err := exec.Command("debugfs", "-f", script.Name(), spec).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("debugfs %s on %s: %w: %s", requests[0], spec, err, out)
	}
	return string(out), nil
}

type inodeTimes struct{ ctime, atime, mtime int64 }

var (
	statInode = regexp.MustCompile(`^Inode: (\d+)`)
	statTime  = regexp.MustCompile(`^\s*(ctime|atime|mtime):\s+0x([0-9a-f]+)`)
)

// parseStats reads the times out of debugfs stat outputs.
func parseStats(out string) map[int]inodeTimes {
	got := map[int]inodeTimes{}
	ino := -1
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := statInode.FindStringSubmatch(line); m != nil {
			ino, _ = strconv.Atoi(m[1])
			got[ino] = inodeTimes{}
			continue
		}
		m := statTime.FindStringSubmatch(line)
		if m == nil || ino < 0 {
			continue
		}
		v, _ := strconv.ParseInt(m[2], 16, 64)
		t := got[ino]
		switch m[1] {
		case "ctime":
			t.ctime = v
		case "atime":
			t.atime = v
		case "mtime":
			t.mtime = v
		}
		got[ino] = t
	}
	return got
}

// Change is one path that differs between two snapshots.
type Change struct {
	Path string `json:"path"`
	What string `json:"what"`
}

func (c Change) String() string { return c.Path + ": " + c.What }

// Diff says, path by path, what changed from before to after: created,
// removed, replaced (a new inode at the path: a rename into place),
// rewritten in place (same inode, new content or mtime), only its inode
// changed (ctime: permissions, links), or only read (atime).
func Diff(before, after Files) []Change {
	var out []Change
	for p, a := range after {
		b, ok := before[p]
		kind := "file"
		if a.Dir {
			kind = "directory"
		}
		switch {
		case !ok:
			out = append(out, Change{p, fmt.Sprintf("created (%s, %d bytes)", kind, a.Size)})
		case a.Inode != b.Inode:
			what := fmt.Sprintf("replaced: a new inode renamed into place (%d bytes, was %d)", a.Size, b.Size)
			if a.Hash != "" && a.Hash == b.Hash {
				what += ", same content"
			}
			out = append(out, Change{p, what})
		case a.Dir && a.Mtime != b.Mtime:
			out = append(out, Change{p, "directory entries changed"})
		case a.Hash != b.Hash || a.Size != b.Size:
			out = append(out, Change{p, fmt.Sprintf("rewritten in place (%d bytes, was %d)", a.Size, b.Size)})
		case a.Mtime != b.Mtime:
			out = append(out, Change{p, "written in place (same content)"})
		case a.Ctime != b.Ctime:
			out = append(out, Change{p, "inode changed (ctime)"})
		case a.Atime != b.Atime:
			out = append(out, Change{p, "read: access time updated (atime)"})
		}
	}
	for p, b := range before {
		if _, ok := after[p]; !ok {
			kind := "file"
			if b.Dir {
				kind = "directory"
			}
			out = append(out, Change{p, fmt.Sprintf("removed (%s)", kind)})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return cmp.Compare(a.Path, b.Path) })
	return out
}
