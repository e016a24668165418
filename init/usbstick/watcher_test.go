package usbstick

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/init/mounts"
)

// fakeSys is a machine whose block devices the test sets before each
// poll; it records what the watcher does.
type fakeSys struct {
	devs     []Device
	listErr  error
	fs       map[string]Filesystem // by path; absent: ErrNoFilesystem
	probeErr map[string]error      // by path: a read error
	mountErr map[string]error      // by source
	calls    []string
}

func (f *fakeSys) Devices() ([]Device, error) {
	return append([]Device(nil), f.devs...), f.listErr
}

func (f *fakeSys) Probe(d Device) (Filesystem, error) {
	f.calls = append(f.calls, "probe "+d.Path)
	if err := f.probeErr[d.Path]; err != nil {
		return Filesystem{}, err
	}
	fs, ok := f.fs[d.Path]
	if !ok {
		return Filesystem{}, ErrNoFilesystem
	}
	return fs, nil
}

func (f *fakeSys) Mount(m mounts.Mount) error {
	f.calls = append(f.calls, m.String())
	return f.mountErr[m.Source]
}

func (f *fakeSys) Unmount(dir string) error {
	f.calls = append(f.calls, "umount -l "+dir)
	return nil
}

func dev(name, seq string) Device {
	return Device{Name: name, Path: "/dev/" + name, Dev: "8:0", Seq: seq, Sectors: 1 << 20}
}

const (
	mountSDA1 = "mount -t vfat -o ro,nosuid,nodev,noexec /dev/sda1 /media/ota"
	mountSDB1 = "mount -t ext4 -o ro,nosuid,nodev,noexec /dev/sdb1 /media/ota"
	umount    = "umount -l /media/ota"
)

var (
	flashDev = dev("vda", "1")
	stickFAT = Filesystem{TypeVFAT, "PODBOOT-OTA"}
)

// poll is one poll of a scenario: the machine as it is, and what the
// watcher must do.
type poll struct {
	devs     []Device
	listErr  error
	probeErr map[string]error
	want     []string
}

func TestWatcherPolls(t *testing.T) {
	fsOf := map[string]Filesystem{
		"/dev/vda":  {TypeExt4, "PODBOOT"},
		"/dev/sda1": stickFAT,
		"/dev/sdb1": {TypeExt4, "PODBOOT-OTA"},
		"/dev/sdc1": {TypeExt4, "podboot-ota"}, // ext4 labels are exact
		"/dev/sdd1": {TypeVFAT, "KINGSTON"},
	}
	for _, tc := range []struct {
		name     string
		mountErr map[string]error
		polls    []poll
	}{
		{"no stick: each label read once", nil, []poll{
			{devs: []Device{flashDev, dev("sdd", "2"), dev("sdd1", "2")}, want: []string{"probe /dev/sdd", "probe /dev/sdd1", "probe /dev/vda"}},
			{devs: []Device{flashDev, dev("sdd", "2"), dev("sdd1", "2")}},
		}},
		{"plugged in after boot, its partition a poll later", nil, []poll{
			{devs: []Device{flashDev}, want: []string{"probe /dev/vda"}},
			{devs: []Device{flashDev, dev("sda", "2")}, want: []string{"probe /dev/sda"}},
			{devs: []Device{flashDev, dev("sda", "2"), dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
			{devs: []Device{flashDev, dev("sda", "2"), dev("sda1", "2")}},
		}},
		{"pulled out, put back", nil, []poll{
			{devs: []Device{dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
			{devs: nil, want: []string{umount}},
			{devs: nil},
			{devs: []Device{dev("sda1", "3")}, want: []string{"probe /dev/sda1", mountSDA1}},
		}},
		{"swapped between two polls under the same name", nil, []poll{
			{devs: []Device{dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
			{devs: []Device{dev("sda1", "3")}, want: []string{umount, "probe /dev/sda1", mountSDA1}},
		}},
		{"an ext4 labelled in lower case is not one; an ext4 stick is", nil, []poll{
			{devs: []Device{dev("sdc1", "2")}, want: []string{"probe /dev/sdc1"}},
			{devs: []Device{dev("sdc1", "2"), dev("sdb1", "3")}, want: []string{"probe /dev/sdb1", mountSDB1}},
		}},
		{"two sticks: the first by name; the second when the first goes", nil, []poll{
			{devs: []Device{dev("sdb1", "3"), dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
			{devs: []Device{dev("sdb1", "3")}, want: []string{umount, "probe /dev/sdb1", mountSDB1}},
		}},
		{"a mount that fails is not tried again until plugged in again", map[string]error{"/dev/sda1": errors.New("invalid argument")}, []poll{
			{devs: []Device{dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
			{devs: []Device{dev("sda1", "2")}},
			{devs: nil},
			{devs: []Device{dev("sda1", "3")}, want: []string{"probe /dev/sda1", mountSDA1}},
		}},
		{"a failed mount falls through to the next stick", map[string]error{"/dev/sda1": errors.New("invalid argument")}, []poll{
			{devs: []Device{dev("sda1", "2"), dev("sdb1", "3")}, want: []string{"probe /dev/sda1", mountSDA1, "probe /dev/sdb1", mountSDB1}},
		}},
		{"a device that cannot be read yet is read again", nil, []poll{
			{devs: []Device{dev("sda1", "2")}, probeErr: map[string]error{"/dev/sda1": errors.New("input/output error")}, want: []string{"probe /dev/sda1"}},
			{devs: []Device{dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
		}},
		{"listing fails: the stick stays mounted", nil, []poll{
			{devs: []Device{dev("sda1", "2")}, want: []string{"probe /dev/sda1", mountSDA1}},
			{listErr: errors.New("open /sys/class/block: too many open files")},
			{devs: []Device{dev("sda1", "2")}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := &fakeSys{fs: fsOf, mountErr: tc.mountErr}
			w := &Watcher{Label: Label, Dir: Dir, Every: Every, Sys: sys, Log: slog.New(slog.DiscardHandler)}
			for i, p := range tc.polls {
				sys.devs, sys.listErr, sys.probeErr, sys.calls = p.devs, p.listErr, p.probeErr, nil
				w.Poll()
				if diff := cmp.Diff(p.want, sys.calls); diff != "" {
					t.Errorf("poll %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// TestWatcherLogs: a stick that fails to mount is logged with the device
// and the cause, once; a listing error once, not every poll.
func TestWatcherLogs(t *testing.T) {
	var buf bytes.Buffer
	sys := &fakeSys{
		fs:       map[string]Filesystem{"/dev/sda1": stickFAT},
		mountErr: map[string]error{"/dev/sda1": errors.New("no such device")},
		devs:     []Device{dev("sda1", "2")},
	}
	w := &Watcher{Label: Label, Dir: Dir, Every: Every, Sys: sys, Log: slog.New(slog.NewTextHandler(&buf, nil))}
	w.Poll()
	w.Poll()
	sys.listErr = errors.New("open /sys/class/block: too many open files")
	w.Poll()
	w.Poll()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines (the failed mount, the listing error), got %d:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"level=ERROR", "device=/dev/sda1", "fstype=vfat", `err="no such device"`, `mount="` + mountSDA1 + `"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("mount failure log %q lacks %s", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "too many open files") {
		t.Errorf("listing error log %q lacks its cause", lines[1])
	}
}

// TestWatcherRunUnmountsAtShutdown: Run polls every Every and unmounts
// the stick when its context ends.
func TestWatcherRunUnmountsAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := &fakeSys{fs: map[string]Filesystem{"/dev/sda1": stickFAT}}
		w := &Watcher{Label: Label, Dir: Dir, Every: Every, Sys: sys, Log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		synctest.Wait()
		if len(sys.calls) != 0 {
			t.Fatalf("calls before the stick: %v", sys.calls)
		}
		sys.devs = []Device{dev("sda1", "2")}
		time.Sleep(Every)
		synctest.Wait()
		if diff := cmp.Diff([]string{"probe /dev/sda1", mountSDA1}, sys.calls); diff != "" {
			t.Errorf("the poll after Every (-want +got):\n%s", diff)
		}
		cancel()
		<-done
		if diff := cmp.Diff([]string{"probe /dev/sda1", mountSDA1, umount}, sys.calls); diff != "" {
			t.Errorf("at shutdown (-want +got):\n%s", diff)
		}
	})
}

func TestWanted(t *testing.T) {
	for _, tc := range []struct {
		source string
		want   bool
	}{
		{"oci-layout:/media/ota", true},
		{"oci-layout:/media/ota/", true},
		{"oci-layout:/media/ota/fleet-a", true},
		{"oci-layout:/media/ota/../ota/x", true},
		{"oci-layout:/media/otax", false},
		{"oci-layout:/media", false},
		{"oci-layout:/flash/bundle", false},
		{"oci-layout:/media/ota/../../flash", false},
		{"oci://registry.example:5000/fleet/edge:stable", false},
		{"", false},
	} {
		if got := Wanted(tc.source); got != tc.want {
			t.Errorf("Wanted(%q) = %t, want %t", tc.source, got, tc.want)
		}
	}
}
