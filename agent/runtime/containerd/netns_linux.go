package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nsKinds are the namespaces a sandbox pins, by file name and clone flag.
var nsKinds = []struct {
	name string
	flag int
}{{"net", unix.CLONE_NEWNET}, {"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}}

// pinNamespaces creates new namespaces of the given kinds ("net", "ipc",
// "uts") and bind-mounts each onto dir/<kind>. It runs on a fresh, locked
// OS thread that is never unlocked: a thread whose namespaces changed must
// not go back to the Go scheduler, so it exits with its goroutine.
func pinNamespaces(dir, hostname string, kinds map[string]bool) error {
	if err := makeSharedMount(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create namespace directory %q: %w", dir, err)
	}
	flags := 0
	for _, k := range nsKinds {
		if kinds[k.name] {
			flags |= k.flag
			f, err := os.OpenFile(filepath.Join(dir, k.name), os.O_CREATE|os.O_RDONLY, 0o444)
			if err != nil {
				return fmt.Errorf("create namespace file: %w", err)
			}
			f.Close()
		}
	}
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		done <- inNewNamespaces(dir, hostname, flags, kinds)
	}()
	return <-done
}

// inNewNamespaces runs on the locked thread.
func inNewNamespaces(dir, hostname string, flags int, kinds map[string]bool) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare namespaces: %w", err)
	}
	if kinds["uts"] && hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", hostname, err)
		}
	}
	if kinds["net"] {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("find loopback: %w", err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set loopback up: %w", err)
		}
	}
	tid := unix.Gettid()
	for _, k := range nsKinds {
		if !kinds[k.name] {
			continue
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, k.name)
		dst := filepath.Join(dir, k.name)
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin %s namespace at %q: %w", k.name, dst, err)
		}
	}
	return nil
}

// makeSharedMount makes dir a mount point with shared propagation (as
// `ip netns` does for /run/netns), so that the namespace bind mounts under it
// reach every mount namespace that was copied from this one.
func makeSharedMount(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %q: %w", dir, err)
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %q a shared mount: %w", dir, err)
	}
	// Not a mount point yet.
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %q onto itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %q a shared mount: %w", dir, err)
	}
	return nil
}

// unpinNamespaces unmounts and removes dir's namespace files and dir.
func unpinNamespaces(dir string) error {
	var errs []error
	for _, k := range nsKinds {
		p := filepath.Join(dir, k.name)
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %q: %w", p, err))
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %q: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
