package usbstick

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/init/mounts"
)

// Sysfs is the real System: the block class of sysfs, the device nodes
// devtmpfs makes in /dev, mount(2).
type Sysfs struct {
	Class string // /sys/class/block
	Dev   string // /dev
}

// NewSysfs is the board's.
func NewSysfs() Sysfs { return Sysfs{Class: "/sys/class/block", Dev: "/dev"} }

// Devices lists the disks and partitions that have media. An empty
// removable disk (a card reader's slot) is opened and closed: without
// udev nothing else makes the kernel look for a card put in since.
func (s Sysfs) Devices() ([]Device, error) {
	entries, err := os.ReadDir(s.Class)
	if err != nil {
		return nil, fmt.Errorf("list block devices in %s: %w", s.Class, err)
	}
	var devs []Device
	for _, e := range entries {
		name := e.Name()
		// Not filepath.Join: ".." must be resolved by the kernel after
		// the class symlink (a partition's parent is its disk).
		dir := s.Class + "/" + name
		sectors, err := strconv.ParseInt(readAttr(dir+"/size"), 10, 64)
		if err != nil {
			continue // gone while listing
		}
		d := Device{Name: name, Path: filepath.Join(s.Dev, name), Dev: readAttr(dir + "/dev")}
		disk := dir
		if _, err := os.Stat(dir + "/partition"); err == nil {
			disk = dir + "/.."
		}
		d.Seq = readAttr(disk + "/diskseq")
		d.Sectors = sectors
		if sectors == 0 {
			if disk == dir && readAttr(dir+"/removable") == "1" {
				if f, err := os.OpenFile(d.Path, os.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			}
			continue
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func readAttr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Probe reads the device's label.
func (s Sysfs) Probe(d Device) (Filesystem, error) {
	f, err := os.Open(d.Path)
	if err != nil {
		return Filesystem{}, fmt.Errorf("open %s: %w", d.Path, err)
	}
	defer f.Close()
	fsys, err := ReadLabel(f)
	if err != nil && !errors.Is(err, ErrNoFilesystem) {
		return Filesystem{}, fmt.Errorf("read label of %s: %w", d.Path, err)
	}
	return fsys, err
}

// Mount creates the mount point and mounts.
func (s Sysfs) Mount(m mounts.Mount) error { return m.Do(mounts.System{}) }

// Unmount detaches dir.
func (s Sysfs) Unmount(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("umount -l %s: %w", dir, err)
	}
	return nil
}
