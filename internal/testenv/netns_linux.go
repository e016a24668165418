package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/podboot/podboot/internal/nsutil"
)

// NetNS is a network namespace the test made, pinned at Path (a bind
// mount, so `nsenter --net=Path` and CNI can use it); it goes when the
// test ends, with every link in it.
type NetNS struct {
	Path string
}

// NewNetNS makes a network namespace with loopback up.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	RequireRoot(t)
	path := filepath.Join(t.TempDir(), "netns")
	if err := nsutil.PinNewNetNS(path); err != nil {
		Unavailable(t, "%v", err)
	}
	t.Cleanup(func() { _ = nsutil.Unpin(path) })
	ns := &NetNS{Path: path}
	h := ns.Handle(t)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("loopback up in %s: %v", path, err)
	}
	return ns
}

// Do runs f on a thread in the namespace: the sockets f opens and the
// processes it starts live there.
func (ns *NetNS) Do(f func() error) error { return nsutil.Do(ns.Path, f) }

// Handle is a netlink handle in the namespace, closed when the test ends.
func (ns *NetNS) Handle(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netns.GetFromPath(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", ns.Path, err)
	}
	t.Cleanup(nh.Close)
	return nh
}

// DialContext dials from inside the namespace, for an http.Transport.
func (ns *NetNS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return nsutil.Dialer(ns.Path)(ctx, network, addr)
}

// Link joins a and b with a veth pair (aName in a, bName in b), gives each
// end its address (CIDR) and brings both up.
func Link(t testing.TB, a *NetNS, aName, aAddr string, b *NetNS, bName, bAddr string) {
	t.Helper()
	ha, hb := a.Handle(t), b.Handle(t)
	bns, err := netns.GetFromPath(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer bns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aName}, PeerName: bName, PeerNamespace: netlink.NsFd(bns)}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s-%s: %v", aName, bName, err)
	}
	for _, end := range []struct {
		h          *netlink.Handle
		name, cidr string
	}{{ha, aName, aAddr}, {hb, bName, bAddr}} {
		l, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatalf("link %s: %v", end.name, err)
		}
		addr, err := netlink.ParseAddr(end.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := end.h.AddrAdd(l, addr); err != nil {
			t.Fatalf("address %s on %s: %v", end.cidr, end.name, err)
		}
		if err := end.h.LinkSetUp(l); err != nil {
			t.Fatalf("%s up: %v", end.name, err)
		}
	}
}

// DefaultRoute routes the namespace's traffic through gw.
func (ns *NetNS) DefaultRoute(t testing.TB, gw string) {
	t.Helper()
	if err := ns.Handle(t).RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("default route via %s in %s: %v", gw, ns.Path, err)
	}
}

// Serve answers each TCP connection's first line, and each UDP datagram,
// on addr in the namespace with "<name> <client ip>": a client learns who
// answered and which source address arrived (a NAT's work shows).
func (ns *NetNS) Serve(t testing.TB, name, addr string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := ns.Do(func() error {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns.Path, err)
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s %s\n", name, host)
			}()
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(from.String())
			_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %s\n", name, host), from)
		}
	}()
}

// Ask sends a line to addr (network "tcp" or "udp") from inside the
// namespace and returns the one-line answer.
func (ns *NetNS) Ask(network, addr string) (string, error) {
	var answer string
	err := ns.Do(func() error {
		c, err := net.DialTimeout(network, addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("hi\n")); err != nil {
			return err
		}
		s, err := bufio.NewReader(c).ReadString('\n')
		answer = strings.TrimSpace(s)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", network, addr, err)
	}
	return answer, nil
}
