// Package nsutil holds the code that depends on which OS thread runs it:
// network namespaces pinned at a path and code run inside them, for the
// tests and benchmarks, and a child started from a thread kept for its
// life (Pdeathsig is per thread), for tests and host tools such as
// qemu/machine. The agent's own namespaces are the runtime's
// (agent/runtime/containerd).
package nsutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// PinNewNetNS makes a new network namespace and pins it at path (created
// as an empty file): it lives until path is unmounted (Unpin) and nothing
// runs in it. `nsenter --net=path` and CNI's netns paths can use it.
func PinNewNetNS(path string) error {
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("network namespace pin %q: %w", path, err)
	}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare a network namespace: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("pin the network namespace at %q: %w", path, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// Unpin unmounts a pin made by PinNewNetNS and removes its file.
func Unpin(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unpin network namespace %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Do runs f on a thread inside the namespace pinned at path: the sockets
// f opens and the processes it starts live there. The thread is thrown
// away after, so the caller's namespace never changes.
func Do(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is not reused
		h, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %q: %w", path, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter network namespace %q: %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Dialer dials from inside the namespace pinned at path; it fits
// http.Transport.DialContext.
func Dialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := Do(path, func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// StartOnKeptThread starts cmd from an OS thread that stays alive until
// release is called. A child's Pdeathsig fires when the *thread* that
// forked it ends, not the process; Do throws its threads away, and the Go
// scheduler may give one of them a goroutine that forked earlier, so a
// child started from an ordinary goroutine could be signalled while its
// parent runs on. Call release once the child has exited.
func StartOnKeptThread(cmd *exec.Cmd) (release func(), err error) {
	errc := make(chan error)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		errc <- err
		if err == nil {
			<-done
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}
