package hostnet

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"

	"github.com/podboot/podboot/internal/testenv"
)

const inNetnsEnv = "PODBOOT_HOSTNET_IN_NETNS"

// TestIntegrationDHCPInNetns runs the real DHCP path (u-root's dhclient,
// netlink) against insomniacslk's DHCP server over a veth pair, in a
// network namespace of its own: the test binary re-executes itself in a
// new namespace, so no goroutine can touch the host's interfaces.
func TestIntegrationDHCPInNetns(t *testing.T) {
	if os.Getenv(inNetnsEnv) == "1" {
		dhcpInNetns(t)
		return
	}
	testenv.RequireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationDHCPInNetns$", "-test.v")
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test in a new network namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestIntegrationDHCPInNetns") {
		t.Fatalf("the namespaced run did not pass:\n%s", out)
	}
	t.Logf("in the namespace:\n%s", out)
}

func dhcpInNetns(t *testing.T) {
	// Refuse to run anywhere but a fresh namespace: it has lo only.
	links, err := netlink.LinkList()
	if err != nil || len(links) != 1 {
		t.Fatalf("not in a fresh network namespace: %d links, %v", len(links), err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pb0"}, PeerName: "pb1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth pair: %v", err)
	}
	srv, _ := netlink.LinkByName("pb1")
	if err := netlink.AddrAdd(srv, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 168, 77, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(srv); err != nil {
		t.Fatal(err)
	}

	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		typ := dhcpv4.MessageTypeOffer
		if m.MessageType() == dhcpv4.MessageTypeRequest {
			typ = dhcpv4.MessageTypeAck
		}
		reply, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.IPv4(192, 168, 77, 50)),
			dhcpv4.WithServerIP(net.IPv4(192, 168, 77, 1)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 168, 77, 1))),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(net.IPv4(192, 168, 77, 1)),
			dhcpv4.WithDNS(net.IPv4(192, 168, 77, 53)),
			dhcpv4.WithLeaseTime(3600),
		)
		if err != nil {
			t.Errorf("reply: %v", err)
			return
		}
		if _, err := conn.WriteTo(reply.ToBytes(), peer); err != nil {
			t.Errorf("send reply: %v", err)
		}
	}
	server, err := server4.NewServer("pb1", &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		t.Fatalf("DHCP server: %v", err)
	}
	go server.Serve()
	defer server.Close()

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan []netip.Prefix, 1)
	r := &Runner{
		Config: Config{Interface: "pb0", ResolvConf: resolv},
		Links:  Netlink{},
		DHCP:   DHCPv4(3*time.Second, 3),
		Timing: Timing{Retry: 200 * time.Millisecond, MaxRetry: time.Second, LinkPoll: 100 * time.Millisecond, MinRenew: time.Minute, DefaultDur: time.Hour},
		Log:    slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Configured: func(name string, a []netip.Prefix) {
			select {
			case done <- a:
			default:
			}
		},
	}
	go r.Run(ctx)
	select {
	case got := <-done:
		if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix("192.168.77.50/24")}, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("lease (-want +got):\n%s", diff)
		}
	case <-ctx.Done():
		t.Fatal("no DHCP lease in 30 s")
	}
	pb0, _ := netlink.LinkByName("pb0")
	addrs, _ := netlink.AddrList(pb0, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "192.168.77.50/24" {
		t.Errorf("pb0 addresses %v, want 192.168.77.50/24", addrs)
	}
	routes, _ := netlink.RouteList(pb0, netlink.FAMILY_V4)
	var gw string
	for _, rt := range routes {
		if rt.Dst == nil || rt.Dst.IP.IsUnspecified() {
			gw = rt.Gw.String()
		}
	}
	if gw != "192.168.77.1" {
		t.Errorf("default route via %q, want 192.168.77.1 (routes %v)", gw, routes)
	}
	b, _ := os.ReadFile(resolv)
	if diff := cmp.Diff("# written by podboot's PID 1\nnameserver 192.168.77.53\n", string(b)); diff != "" {
		t.Errorf("resolv.conf (-want +got):\n%s", diff)
	}
	// The interface is not the first ethernet by accident: a veth is not one.
	if name, err := (Netlink{}).FirstEthernet(); err == nil {
		t.Errorf("FirstEthernet = %q in a namespace with only veths, want an error", name)
	}
}
