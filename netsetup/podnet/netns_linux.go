package podnet

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// isNetNS reports whether path is a network namespace (an nsfs bind mount
// or a /proc/<pid>/ns/net link), not a file left after its unmount.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC || st.Type == unix.PROC_SUPER_MAGIC
}

// loopbackUp sets lo up inside the namespace at path. A netlink handle
// opened in the namespace does it without moving this goroutine's thread.
func loopbackUp(path string) error {
	if !isNetNS(path) {
		return fmt.Errorf("%s is not a network namespace", path)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	// Route only: a board kernel without xfrm_user refuses the other
	// families NewHandleAt opens by default (EPROTONOSUPPORT).
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in network namespace %s: %w", path, err)
	}
	defer h.Close()
	// LinkByName falls back to a dump on old kernels.
	lo, err := retryDump(func() (netlink.Link, error) { return h.LinkByName("lo") })
	if err != nil {
		return fmt.Errorf("find lo in %s: %w", path, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in %s: %w", path, err)
	}
	return nil
}

// dumpRetries bounds retries of a netlink dump the kernel interrupted
// because the table changed under it (NLM_F_DUMP_INTR).
const dumpRetries = 5

// retryDump runs a netlink dump again while the kernel reports it
// interrupted; the last partial result is returned with the error if it
// never completes.
func retryDump[T any](dump func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpRetries {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
