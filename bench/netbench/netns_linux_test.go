package netbench

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/internal/nsutil"
)

// netNS is a network namespace the benchmark made, pinned at path (CNI
// wants a path) and open as fd (nftables and netlink want an fd).
type netNS struct {
	path string
	fd   int
}

// newNetNS makes a network namespace pinned at dir/name (nsutil: no
// thread of the process is left in it). close undoes it; the kernel frees
// the namespace, and every link, address and nft table in it, once
// nothing refers to it.
func newNetNS(dir, name string) (*netNS, error) {
	path := filepath.Join(dir, name)
	if err := nsutil.PinNewNetNS(path); err != nil {
		return nil, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = nsutil.Unpin(path)
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return &netNS{path: path, fd: fd}, nil
}

func (n *netNS) close() {
	unix.Close(n.fd)
	_ = nsutil.Unpin(n.path)
}

// mustNetNS is newNetNS for a benchmark, removed at its cleanup.
func mustNetNS(b *testing.B, dir, name string) *netNS {
	b.Helper()
	n, err := newNetNS(dir, name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.close)
	return n
}

// in runs f on a thread moved into the namespace (nsutil.Do); what f
// execs (the CNI plugins) and the sockets it makes belong to that
// namespace. This is simpler than re-executing the test binary under
// nsenter: the client and server stay one process, and a socket keeps
// its namespace whichever thread later reads or writes it.
func (n *netNS) in(f func() error) error { return nsutil.Do(n.path, f) }

// handle is a netlink handle in the namespace, closed at cleanup: its
// socket would keep the namespace alive.
func (n *netNS) handle(b *testing.B) *netlink.Handle {
	b.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(n.fd), unix.NETLINK_ROUTE)
	if err != nil {
		b.Fatalf("netlink in %s: %v", n.path, err)
	}
	b.Cleanup(h.Close)
	return h
}

// addrUp gives link name the address cidr (none if empty) and sets it up.
func addrUp(b *testing.B, h *netlink.Handle, name, cidr string) {
	b.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		b.Fatalf("link %s: %v", name, err)
	}
	if cidr != "" {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.AddrAdd(l, a); err != nil {
			b.Fatalf("address %s on %s: %v", cidr, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		b.Fatalf("set %s up: %v", name, err)
	}
}

// vethPair links namespaces a and b by a veth pair named ifA in a and ifB
// in b, with the given addresses, both up.
func vethPair(b *testing.B, a *netNS, ifA, cidrA string, o *netNS, ifB, cidrB string) {
	b.Helper()
	ha, hb := a.handle(b), o.handle(b)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifA}, PeerName: ifB, PeerNamespace: netlink.NsFd(o.fd)}
	if err := ha.LinkAdd(veth); err != nil {
		b.Fatalf("veth %s-%s: %v", ifA, ifB, err)
	}
	addrUp(b, ha, "lo", "")
	addrUp(b, hb, "lo", "")
	addrUp(b, ha, ifA, cidrA)
	addrUp(b, hb, ifB, cidrB)
}
