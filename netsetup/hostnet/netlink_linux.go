package hostnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
)

// Netlink is the real link layer.
type Netlink struct{}

func (Netlink) LoopbackUp() error {
	lo, err := linkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	return netlink.LinkSetUp(lo)
}

// FirstEthernet is the physical ethernet link with the lowest index:
// veths, bridges and the like have another link type than "device".
func (Netlink) FirstEthernet() (string, error) {
	links, err := retryDump("dump links", netlink.LinkList)
	if err != nil {
		return "", fmt.Errorf("list links: %w", err)
	}
	slices.SortFunc(links, func(a, b netlink.Link) int { return a.Attrs().Index - b.Attrs().Index })
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "device" && a.EncapType == "ether" && a.Flags&net.FlagLoopback == 0 {
			return a.Name, nil
		}
	}
	return "", fmt.Errorf("no ethernet interface among %d links", len(links))
}

func (Netlink) SetUp(name string) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// Carrier follows RFC 2863 operstate as u-root's dhclient does: up, or
// unknown for drivers that do not report it.
func (Netlink) Carrier(name string) (bool, error) {
	l, err := linkByName(name)
	if err != nil {
		return false, err
	}
	o := l.Attrs().OperState
	return o == netlink.OperUp || o == netlink.OperUnknown, nil
}

func (Netlink) ReplaceAddr(name string, p netip.Prefix) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	return netlink.AddrReplace(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}})
}

func (Netlink) ReplaceDefaultRoute(name string, gw netip.Addr) error {
	l, err := linkByName(name)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()})
}

// linkByName is netlink.LinkByName, which dumps every link on kernels
// that cannot look one up by name.
func linkByName(name string) (netlink.Link, error) {
	return retryDump("dump links", func() (netlink.Link, error) { return netlink.LinkByName(name) })
}

// dumpRetries bounds the retries of a netlink dump.
const dumpRetries = 5

// retryDump runs dump again while the kernel reports it interrupted
// (NLM_F_DUMP_INTR: the table changed during the dump, so the result may
// be partial), as containernetworking/plugins does; after dumpRetries
// interrupted tries it gives up with an error naming the dump.
func retryDump[T any](what string, dump func() (T, error)) (T, error) {
	var err error
	for range dumpRetries {
		var v T
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	var zero T
	return zero, fmt.Errorf("%s: interrupted %d times: %w", what, dumpRetries, err)
}

// DHCPv4 asks for a lease on name with u-root's dhclient.
func DHCPv4(timeout time.Duration, retries int) DHCP {
	return func(ctx context.Context, name string) (Lease, error) {
		l, err := linkByName(name)
		if err != nil {
			return Lease{}, err
		}
		cfg := dhclient.Config{Timeout: timeout, Retries: retries}
		for res := range dhclient.SendRequests(ctx, []netlink.Link{l}, true, false, cfg, timeout) {
			if res.Err != nil {
				return Lease{}, fmt.Errorf("dhcp on %s: %w", name, res.Err)
			}
			msg, _ := res.Lease.Message()
			return leaseFrom(msg)
		}
		return Lease{}, fmt.Errorf("dhcp on %s: link did not come up", name)
	}
}

// leaseFrom reads the parts of a DHCPACK the board uses.
func leaseFrom(m *dhcpv4.DHCPv4) (Lease, error) {
	if m == nil {
		return Lease{}, fmt.Errorf("dhcp: no IPv4 answer")
	}
	ip, ok := netip.AddrFromSlice(m.YourIPAddr.To4())
	if !ok || !ip.IsValid() || ip.IsUnspecified() {
		return Lease{}, fmt.Errorf("dhcp: answer without an address")
	}
	bits := 32
	if mask := m.SubnetMask(); mask != nil {
		bits, _ = mask.Size()
	}
	l := Lease{Address: netip.PrefixFrom(ip, bits), Duration: m.IPAddressLeaseTime(0)}
	if r := m.Router(); len(r) > 0 {
		l.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	for _, d := range m.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			l.Nameservers = append(l.Nameservers, a)
		}
	}
	if s := m.DomainSearch(); s != nil {
		l.Search = s.Labels
	}
	return l, nil
}
