package hostport

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// netNS is a network namespace for the test (pinned by internal/nsutil
// through testenv, gone when the test ends) with an fd open on it, which
// netlink.NsFd and Options.NetNS take.
type netNS struct {
	*testenv.NetNS
	fd int
}

func newNetNS(t *testing.T) *netNS {
	t.Helper()
	ns := testenv.NewNetNS(t)
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", ns.Path, err)
	}
	t.Cleanup(func() { unix.Close(fd) }) // before the unpin: cleanups run last first
	return &netNS{NetNS: ns, fd: fd}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func addrUp(t *testing.T, h *netlink.Handle, name, cidr string) {
	t.Helper()
	l, err := h.LinkByName(name)
	must(t, "link "+name, err)
	if cidr != "" {
		a, err := netlink.ParseAddr(cidr)
		must(t, "parse "+cidr, err)
		must(t, "addr "+cidr+" on "+name, h.AddrAdd(l, a))
	}
	must(t, "up "+name, h.LinkSetUp(l))
}

// serve answers every TCP line and UDP datagram on :port in namespace ns
// with "<name> <peer ip>", so a client learns who answered and which
// source address arrived.
func serve(t *testing.T, ns *netNS, name string, port int) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	must(t, "listen in "+name, ns.Do(func() error {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	}))
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					return
				}
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s %s\n", name, host)
			}()
		}
	}()
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(from.String())
			pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", name, host)), from)
		}
	}()
}

// ask connects from namespace ns to addr and returns the server's answer.
func ask(ns *netNS, network, addr string) (string, error) {
	var answer string
	err := ns.Do(func() error {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("hi\n")); err != nil {
			return err
		}
		s, err := bufio.NewReader(c).ReadString('\n')
		answer = strings.TrimSpace(s)
		return err
	})
	return answer, err
}

func TestIntegrationHostPort(t *testing.T) {
	testenv.RequireRoot(t)
	hostHadTable := hostHasTable(t)
	t.Cleanup(func() {
		if !hostHadTable && hostHasTable(t) {
			t.Errorf("table inet %s appeared in the host's namespace", TableName)
		}
	})
	node, pod1, pod2, outside := newNetNS(t), newNetNS(t), newNetNS(t), newNetNS(t)
	hn, hp1, hp2, ho := node.Handle(t), pod1.Handle(t), pod2.Handle(t), outside.Handle(t)

	// Topology: node with cni0 10.88.0.1/16, two pods on it, and outside
	// (also the upstream target) on ext0 192.0.2.1/24 — 192.0.2.2/24.
	must(t, "bridge", hn.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "cni0"}}))
	addrUp(t, hn, "lo", "")
	addrUp(t, hn, "cni0", "10.88.0.1/16")
	br, err := hn.LinkByName("cni0")
	must(t, "cni0", err)
	for i, p := range []struct {
		ns *netNS
		h  *netlink.Handle
		ip string
	}{{pod1, hp1, "10.88.0.2/16"}, {pod2, hp2, "10.88.0.3/16"}} {
		host := fmt.Sprintf("veth%d", i)
		must(t, "veth "+host, hn.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MasterIndex: br.Attrs().Index}, PeerName: "eth0", PeerNamespace: netlink.NsFd(p.ns.fd)}))
		addrUp(t, hn, host, "")
		// The bridge plugin's hairpinMode (containerd's default CNI config):
		// with br_netfilter, a hairpin connection is DNATed at the bridge
		// and bridged back out of the port it came in on.
		hl, err := hn.LinkByName(host)
		must(t, host, err)
		must(t, "hairpin "+host, hn.LinkSetHairpin(hl, true))
		addrUp(t, p.h, "lo", "")
		addrUp(t, p.h, "eth0", p.ip)
		must(t, "default route", p.h.RouteAdd(&netlink.Route{Gw: net.ParseIP("10.88.0.1")}))
	}
	must(t, "veth ext0", hn.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ext0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(outside.fd)}))
	addrUp(t, hn, "ext0", "192.0.2.1/24")
	addrUp(t, ho, "lo", "")
	addrUp(t, ho, "eth0", "192.0.2.2/24")

	serve(t, pod1, "pod1", 80)
	serve(t, pod2, "pod2", 80)
	serve(t, outside, "upstream", 9000)

	m, err := New(Options{NetNS: node.fd, PodSubnets: []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")}, Bridge: "cni0"})
	must(t, "New", err)
	must(t, "EnsureBase", m.EnsureBase())
	must(t, "EnsureBase again", m.EnsureBase())

	// Masquerade: pod → upstream arrives from the node's address; pod → pod
	// keeps the pod's.
	for _, c := range []struct{ network, addr, want string }{
		{"tcp", "192.0.2.2:9000", "upstream 192.0.2.1"},
		{"udp", "192.0.2.2:9000", "upstream 192.0.2.1"},
		{"tcp", "10.88.0.3:80", "pod2 10.88.0.2"},
	} {
		got, err := ask(pod1, c.network, c.addr)
		if err != nil || got != c.want {
			t.Errorf("pod1 → %s %s: got %q, %v; want %q", c.network, c.addr, got, err, c.want)
		}
	}

	const uid1, uid2 = "11111111-aaaa-4bbb-8ccc-000000000001", "22222222-aaaa-4bbb-8ccc-000000000002"
	ports1 := []Port{
		{Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 80},
		{Protocol: corev1.ProtocolUDP, HostPort: 8080, ContainerPort: 80},
		{Protocol: corev1.ProtocolTCP, HostPort: 8443, ContainerPort: 80, HostIP: netip.MustParseAddr("192.0.2.1")},
	}
	must(t, "Add pod1", m.Add(uid1, netip.MustParseAddr("10.88.0.2"), ports1))
	must(t, "Add pod1 again", m.Add(uid1, netip.MustParseAddr("10.88.0.2"), ports1))
	// Read back: the second Add replaced the first instead of doubling it.
	c, err := m.conn()
	must(t, "conn", err)
	for name, want := range map[string]int{chainHostPorts: 2, chainHostIPPorts: 1, chainMasquerade: 2} {
		rules, err := c.GetRules(table, &nftables.Chain{Name: name, Table: table})
		must(t, "rules of "+name, err)
		if len(rules) != want {
			t.Errorf("chain %s: %d rules after Add twice, want %d", name, len(rules), want)
		}
		for _, r := range rules {
			if s, _ := ruleComment(r); !strings.HasPrefix(s, "pod="+uid1+" ") {
				t.Errorf("chain %s: rule comment %q, want pod1's", name, s)
			}
		}
	}

	for _, c := range []struct {
		from          string
		ns            *netNS
		network, addr string
		want          string
	}{
		{"outside", outside, "tcp", "192.0.2.1:8080", "pod1 192.0.2.2"},
		{"outside", outside, "udp", "192.0.2.1:8080", "pod1 192.0.2.2"},
		{"outside", outside, "tcp", "192.0.2.1:8443", "pod1 192.0.2.2"},
		{"node", node, "tcp", "192.0.2.1:8080", "pod1 192.0.2.1"},
		{"node", node, "udp", "192.0.2.1:8080", "pod1 192.0.2.1"},
		{"node", node, "tcp", "127.0.0.1:8080", "pod1 10.88.0.1"}, // route_localnet + masquerade
		{"node", node, "udp", "127.0.0.1:8080", "pod1 10.88.0.1"},
		{"node", node, "tcp", "10.88.0.1:8080", "pod1 10.88.0.1"}, // any local address
		{"pod1", pod1, "tcp", "192.0.2.1:8080", "pod1 10.88.0.1"}, // hairpin
		{"pod2", pod2, "tcp", "192.0.2.1:8080", "pod1 10.88.0.3"}, // pod to another pod's hostPort
	} {
		got, err := ask(c.ns, c.network, c.addr)
		if err != nil || got != c.want {
			t.Errorf("%s → %s %s: got %q, %v; want %q", c.from, c.network, c.addr, got, err, c.want)
		}
	}
	// hostIP 192.0.2.1 only: not on the bridge's address.
	if got, err := ask(node, "tcp", "10.88.0.1:8443"); err == nil {
		t.Errorf("node → 10.88.0.1:8443 (hostIP 192.0.2.1 only) answered %q", got)
	}

	// A conflicting hostPort is refused, naming both pods; nothing changes.
	err = m.Add(uid2, netip.MustParseAddr("10.88.0.3"), []Port{{Protocol: corev1.ProtocolTCP, HostPort: 8443, ContainerPort: 80}})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Pod != uid2 || ce.OtherPod != uid1 || !strings.Contains(err.Error(), uid1) || !strings.Contains(err.Error(), uid2) {
		t.Errorf("conflicting Add: got %v, want a ConflictError naming %s and %s", err, uid2, uid1)
	}
	err = m.Add(uid2, netip.MustParseAddr("10.88.0.3"), []Port{{Protocol: corev1.ProtocolSCTP, HostPort: 9999, ContainerPort: 80}})
	if err == nil || !strings.Contains(err.Error(), "SCTP") {
		t.Errorf("SCTP Add: got %v, want an error naming SCTP", err)
	}
	ports2 := []Port{{Protocol: corev1.ProtocolTCP, HostPort: 8081, ContainerPort: 80}}
	must(t, "Add pod2", m.Add(uid2, netip.MustParseAddr("10.88.0.3"), ports2))
	if got, err := ask(outside, "tcp", "192.0.2.1:8081"); err != nil || got != "pod2 192.0.2.2" {
		t.Errorf("outside → pod2's hostPort: got %q, %v", got, err)
	}

	list, err := m.List()
	must(t, "List", err)
	sortPorts := cmpopts.SortSlices(func(a, b Port) bool { return a.String() < b.String() })
	if d := cmp.Diff(map[string][]Port{uid1: ports1, uid2: ports2}, list, sortPorts, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}

	// GC keeps pod1 only.
	must(t, "GC", m.GC(map[string]bool{uid1: true}))
	if _, err := ask(outside, "tcp", "192.0.2.1:8081"); err == nil {
		t.Error("pod2's hostPort still answers after GC")
	}
	if got, err := ask(outside, "tcp", "192.0.2.1:8080"); err != nil || got != "pod1 192.0.2.2" {
		t.Errorf("pod1's hostPort after GC: got %q, %v", got, err)
	}

	must(t, "Remove pod1", m.Remove(uid1))
	must(t, "Remove pod1 again", m.Remove(uid1))
	if got, err := ask(outside, "tcp", "192.0.2.1:8080"); err == nil {
		t.Errorf("pod1's hostPort still answers after Remove: %q", got)
	}
	if got, err := ask(node, "tcp", "127.0.0.1:8080"); err == nil {
		t.Errorf("127.0.0.1:8080 still answers after Remove: %q", got)
	}

	// Read back: no pod rule in any chain, the base chains still there,
	// masquerade still working.
	for _, name := range podChains {
		rules, err := c.GetRules(table, &nftables.Chain{Name: name, Table: table})
		must(t, "rules of "+name, err)
		if len(rules) != 0 {
			t.Errorf("chain %s: %d rules left after Remove of every pod", name, len(rules))
		}
	}
	post, err := c.GetRules(table, &nftables.Chain{Name: chainPostrouting, Table: table})
	must(t, "postrouting rules", err)
	if len(post) != 4 {
		t.Errorf("postrouting: %d rules, want 4 (jump, 2 multicast returns, 1 subnet masquerade)", len(post))
	}
	if got, err := ask(pod1, "tcp", "192.0.2.2:9000"); err != nil || got != "upstream 192.0.2.1" {
		t.Errorf("masquerade after Remove: got %q, %v", got, err)
	}
}

// hostHasTable guards against the test touching the host's namespace.
func hostHasTable(t *testing.T) bool {
	c, err := nftables.New()
	must(t, "nftables", err)
	_, err = c.ListTableOfFamily(TableName, nftables.TableFamilyINet)
	return err == nil
}
