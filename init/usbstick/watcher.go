package usbstick

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/init/mounts"
)

// Defaults of the board.
const (
	// Label is the filesystem label of an OTA stick.
	Label = "PODBOOT-OTA"
	// Dir is where the stick is mounted: device.yaml's
	// `ota.source: oci-layout:/media/ota` (or a directory below it).
	Dir = "/media/ota"
	// Every is how often the block devices are listed: a stick is
	// mounted a few seconds after it is plugged in. Listing sysfs is
	// cheap; a device's label is read once, when it appears.
	Every = 3 * time.Second
)

// Wanted reports whether device.yaml's ota.source reads the stick: an
// oci-layout: directory at or below Dir. No other board mounts one, so
// none parses whatever filesystem is plugged into it.
func Wanted(source string) bool {
	dir, ok := strings.CutPrefix(source, "oci-layout:")
	return ok && strings.HasPrefix(path.Clean(dir)+"/", Dir+"/")
}

// Device is one block device (a disk or a partition) as sysfs lists it.
type Device struct {
	Name string // sda1
	Path string // /dev/sda1
	// Dev is major:minor; Seq is the disk's diskseq (Linux 5.15+), which
	// the kernel raises for every disk it attaches: a stick pulled out
	// and put back between two polls is a new device, even under the
	// same name.
	Dev, Seq string
	Sectors  int64 // size in 512-byte sectors
}

// key identifies a device across polls: a new stick, or new media in a
// card reader (another size), gets a new key.
func (d Device) key() string { return fmt.Sprintf("%s %s %s %d", d.Name, d.Dev, d.Seq, d.Sectors) }

// System is what the watcher does to the machine; Sysfs is the real one,
// the tests use a fake.
type System interface {
	// Devices lists the block devices that have media.
	Devices() ([]Device, error)
	// Probe reads the device's filesystem type and label (ReadLabel).
	Probe(d Device) (Filesystem, error)
	// Mount does m (creating its target).
	Mount(m mounts.Mount) error
	// Unmount detaches the mount at dir at once (MNT_DETACH): the device
	// is gone, and readers of it get errors rather than hang the unmount.
	Unmount(dir string) error
}

// Watcher mounts the first device labelled Label at Dir and unmounts it
// when it goes away. Only Run (or Poll) may use it, from one goroutine.
type Watcher struct {
	Label string
	Dir   string
	Every time.Duration
	Sys   System
	Log   *slog.Logger

	mounted *Device // the stick mounted at Dir
	// probed holds what each present device is, by key: a label is read
	// once, and a stick that failed to mount is not tried again (nor
	// logged again) until it is plugged in again.
	probed  map[string]probe
	lastErr string // the last listing error logged, so it is logged once
}

type probe struct {
	fs       Filesystem
	err      error // ErrNoFilesystem: nothing to mount
	mountErr error // set once a mount of it failed
}

// Mount is how a stick is mounted: read-only, and nothing on it is a
// device, runs, or raises privileges.
func Mount(d Device, fs Filesystem, dir string) mounts.Mount {
	return mounts.Mount{
		Source: d.Path, Target: dir, FSType: fs.Type,
		Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
	}
}

// Run polls until ctx ends, then unmounts the stick.
func (w *Watcher) Run(ctx context.Context) {
	w.Log.Info("watching for the OTA stick", "label", w.Label, "dir", w.Dir, "every", w.Every)
	t := time.NewTicker(w.Every)
	defer t.Stop()
	for {
		w.Poll()
		select {
		case <-ctx.Done():
			if w.mounted != nil {
				w.unmount("shutdown")
			}
			return
		case <-t.C:
		}
	}
}

// Poll lists the block devices once: it unmounts the stick when its
// device is gone, and mounts one when none is mounted and a device
// labelled w.Label is present.
func (w *Watcher) Poll() {
	devs, err := w.Sys.Devices()
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			w.Log.Warn("OTA stick: list block devices", "err", err)
			w.lastErr = msg
		}
		return
	}
	w.lastErr = ""
	present := map[string]bool{}
	for _, d := range devs {
		present[d.key()] = true
	}
	if w.mounted != nil && !present[w.mounted.key()] {
		w.unmount("the device is gone")
	}
	if w.probed == nil {
		w.probed = map[string]probe{}
	}
	for k := range w.probed {
		if !present[k] {
			delete(w.probed, k)
		}
	}
	if w.mounted != nil {
		return
	}
	// Several sticks: the first by name (sda before sdb) wins.
	slices.SortFunc(devs, func(a, b Device) int { return strings.Compare(a.Name, b.Name) })
	for _, d := range devs {
		p, ok := w.probed[d.key()]
		if !ok {
			fs, err := w.Sys.Probe(d)
			if err != nil && !errors.Is(err, ErrNoFilesystem) {
				// Not remembered: a device that has just appeared may
				// not answer yet. Debug only: an empty card reader
				// would say so every poll.
				w.Log.Debug("OTA stick: read label", "device", d.Path, "err", err)
				continue
			}
			p = probe{fs: fs, err: err}
			w.probed[d.key()] = p
		}
		if p.err != nil || p.mountErr != nil || !p.fs.Is(w.Label) {
			continue
		}
		m := Mount(d, p.fs, w.Dir)
		if err := w.Sys.Mount(m); err != nil {
			p.mountErr = err
			w.probed[d.key()] = p
			w.Log.Error("OTA stick: mount failed (not tried again until it is plugged in again)",
				"device", d.Path, "fstype", p.fs.Type, "label", p.fs.Label, "mount", m.String(), "err", err)
			continue
		}
		w.mounted = &d
		w.Log.Info("OTA stick mounted", "device", d.Path, "fstype", p.fs.Type, "label", p.fs.Label, "mount", m.String())
		return
	}
}

// unmount detaches the stick; it is forgotten even when that fails (it
// was unmounted by hand): the next stick may be mounted.
func (w *Watcher) unmount(why string) {
	d := w.mounted
	w.mounted = nil
	if err := w.Sys.Unmount(w.Dir); err != nil {
		w.Log.Warn("OTA stick: unmount", "device", d.Path, "dir", w.Dir, "why", why, "err", err)
		return
	}
	w.Log.Info("OTA stick unmounted", "device", d.Path, "dir", w.Dir, "why", why)
}
