package e2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/mount/gpt"

	"github.com/podboot/podboot/init/flash"
)

// FlashLabel is the flash partition's ext4 label.
const FlashLabel = "PODBOOT"

// Flash is the ext4 flash partition inside a disk image, edited offline
// with e2fsprogs (image?offset=N), as writing an SD card on a PC would.
type Flash struct {
	Disk   string
	Offset int64
}

// FindFlash finds the ext4 partition labelled PODBOOT in a GPT disk image.
func FindFlash(disk string) (Flash, error) {
	f, err := os.Open(disk)
	if err != nil {
		return Flash{}, fmt.Errorf("find flash in %s: %w", disk, err)
	}
	defer f.Close()
	table, err := gpt.Table(f, gpt.BlockSize)
	if err != nil {
		return Flash{}, fmt.Errorf("find flash in %s: read GPT: %w", disk, err)
	}
	for _, p := range table.Parts {
		if p.FirstLBA == 0 {
			continue
		}
		off := int64(p.FirstLBA) * gpt.BlockSize
		size := int64(p.LastLBA-p.FirstLBA+1) * gpt.BlockSize
		sb, err := flash.ReadSuperblock(io.NewSectionReader(f, off, size))
		if err == nil && sb.Label == FlashLabel {
			return Flash{Disk: disk, Offset: off}, nil
		}
	}
	return Flash{}, fmt.Errorf("find flash in %s: no ext4 partition labelled %s", disk, FlashLabel)
}

// spec is the image name e2fsprogs tools take for the partition.
func (fl Flash) spec() string { return fmt.Sprintf("%s?offset=%d", fl.Disk, fl.Offset) }

// debugfs runs debugfs requests; it reports most failures only on its
// output, so the callers check the result.
func (fl Flash) debugfs(write bool, requests ...string) (string, error) {
	args := []string{}
	if write {
		args = append(args, "-w")
	}
	script, err := os.CreateTemp("", "debugfs")
	if err != nil {
		return "", err
	}
	defer os.Remove(script.Name())
	fmt.Fprintln(script, strings.Join(requests, "\n"))
	script.Close()
	args = append(args, "-f", script.Name(), fl.spec())
	out, err := exec.Command("debugfs", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("debugfs %s: %w\n%s", strings.Join(requests, "; "), err, out)
	}
	return string(out), nil
}

// ReadFile reads a file of the flash ("/pods/web.yaml").
func (fl Flash) ReadFile(path string) ([]byte, error) {
	out, err := exec.Command("debugfs", "-R", "cat "+path, fl.spec()).Output()
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", path, fl.spec(), err)
	}
	if ok, err := fl.Exists(path); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("read %s from %s: %w", path, fl.spec(), os.ErrNotExist)
	}
	return out, nil
}

// Exists reports whether path exists on the flash.
func (fl Flash) Exists(path string) (bool, error) {
	out, err := fl.debugfs(false, "stat "+path)
	if err != nil {
		return false, err
	}
	return !strings.Contains(out, "File not found"), nil
}

// List lists a directory of the flash.
func (fl Flash) List(dir string) ([]string, error) {
	out, err := fl.debugfs(false, "ls -p "+dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// ls -p: /inode/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		if len(f) >= 7 && f[5] != "." && f[5] != ".." && f[5] != "" {
			names = append(names, f[5])
		}
	}
	return names, nil
}

// WriteFile writes data to path on the flash, replacing it.
func (fl Flash) WriteFile(path string, data []byte) error {
	tmp, err := os.CreateTemp("", "flashfile")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	tmp.Close()
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if _, err := fl.debugfs(true, "rm "+path, "write "+tmp.Name()+" "+path); err != nil {
		return fmt.Errorf("write %s on %s: %w", path, fl.spec(), err)
	}
	got, err := fl.ReadFile(path)
	if err != nil || string(got) != string(data) {
		return fmt.Errorf("write %s on %s: reads back %d bytes (%v), wrote %d", path, fl.spec(), len(got), err, len(data))
	}
	return nil
}

// Remove removes a file from the flash.
func (fl Flash) Remove(path string) error {
	if _, err := fl.debugfs(true, "rm "+path); err != nil {
		return fmt.Errorf("remove %s from %s: %w", path, fl.spec(), err)
	}
	if ok, err := fl.Exists(path); err != nil || ok {
		return fmt.Errorf("remove %s from %s: still there (%v)", path, fl.spec(), err)
	}
	return nil
}

// Check runs e2fsck -fn (read-only, forced) and reads the superblock's
// state: a clean poweroff leaves the filesystem cleanly unmounted and
// consistent. The error carries e2fsck's output.
func (fl Flash) Check() error {
	f, err := os.Open(fl.Disk)
	if err != nil {
		return err
	}
	sb, err := flash.ReadSuperblock(io.NewSectionReader(f, fl.Offset, 1<<20))
	f.Close()
	if err != nil {
		return fmt.Errorf("check flash %s: %w", fl.spec(), err)
	}
	var unclean error
	if why := sb.Unclean(); why != "" {
		unclean = fmt.Errorf("check flash %s: superblock: %s", fl.spec(), why)
	}
	out, err := exec.Command("e2fsck", "-fn", fl.spec()).CombinedOutput()
	if err != nil {
		return errors.Join(unclean, fmt.Errorf("check flash %s: e2fsck -fn: %w\n%s", fl.spec(), err, out))
	}
	return unclean
}

// CopyImage copies an image directory (sparse disk.img included) so a test
// can change its flash.
func CopyImage(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("copy image %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("copy image %s: %w", src, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		out, err := exec.Command("cp", "--sparse=always", filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())).CombinedOutput()
		if err != nil {
			return fmt.Errorf("copy image %s: %s: %w\n%s", src, e.Name(), err, out)
		}
	}
	return nil
}
