package podnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/internal/testenv"
)

// churnCycles is how many setup/teardown cycles the churn test runs.
const churnCycles = 2000

const pluginsVersion = "v1.9.1"

// pluginDir is bin/cni of the repository when the build put the plugins
// there, else the plugins built into a temporary directory.
func pluginDir(t *testing.T) string {
	t.Helper()
	if root, err := testenv.RepoRoot(); err == nil {
		dir := filepath.Join(root, "bin", "cni")
		if hasPlugins(dir) {
			return dir
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "install",
		"github.com/containernetworking/plugins/plugins/main/bridge@"+pluginsVersion,
		"github.com/containernetworking/plugins/plugins/ipam/host-local@"+pluginsVersion)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil || !hasPlugins(dir) {
		testenv.Unavailable(t, "needs the CNI plugins in bin/cni or a go toolchain to build them: %v\n%s", err, out)
	}
	return dir
}

func hasPlugins(dir string) bool {
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}

// newNetNS makes a network namespace pinned at a temporary file.
func newNetNS(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := nsutil.PinNewNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nsutil.Unpin(path) })
	return path
}

// unmountNetNS drops the pin, leaving its empty file: the namespace is
// gone once nothing runs in it.
func unmountNetNS(path string) {
	_ = unix.Unmount(path, unix.MNT_DETACH)
}

// inNS runs f on a thread in the namespace at path; what f execs (the CNI
// plugins) and the sockets it opens live there too.
func inNS(path string, f func() error) error { return nsutil.Do(path, f) }

// handleIn is a netlink handle in the namespace at path. Close it: its
// sockets keep the namespace alive.
func handleIn(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testNet is a pod network whose node side lives in its own namespace.
type testNet struct {
	host    string // the node's namespace
	dataDir string // host-local's
	net     *Network
	netCfg  Config
	cfg     device.PodNetwork
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	testenv.RequireRoot(t)
	plugins := pluginDir(t)
	tn := &testNet{host: newNetNS(t), dataDir: t.TempDir(), cfg: device.PodNetwork{Bridge: "cni0", Subnet: "10.88.0.0/16"}}
	conf, err := Conflist(tn.cfg, tn.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	tn.netCfg = Config{PluginDirs: []string{plugins}, Conflist: conf, CacheDir: t.TempDir()}
	tn.net, err = New(tn.netCfg)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func (tn *testNet) setup(t *testing.T, uid, ns string) Result {
	t.Helper()
	var r Result
	err := inNS(tn.host, func() error {
		var err error
		r, err = tn.net.Setup(context.Background(), uid, ns)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (tn *testNet) teardown(uid, ns string) error {
	return inNS(tn.host, func() error { return tn.net.Teardown(context.Background(), uid, ns) })
}

// allocated is host-local's allocations: the files named by an address.
func (tn *testNet) allocated(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(tn.dataDir, NetworkName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// veths are the links enslaved to the bridge in the node's namespace.
func (tn *testNet) veths(t *testing.T) []string {
	t.Helper()
	h := handleIn(t, tn.host)
	links, err := retryDump(h.LinkList)
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	var br netlink.Link
	for _, l := range links {
		if l.Attrs().Name == tn.cfg.Bridge {
			br = l
		}
	}
	if br == nil {
		return nil
	}
	var out []string
	for _, l := range links {
		if l.Type() == "veth" {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// addrsOf is the IPv4 addresses of link name in the namespace at path,
// nil when there is no such link.
func addrsOf(t *testing.T, path, name string) []net.IP {
	t.Helper()
	h := handleIn(t, path)
	defer h.Close()
	l, err := retryDump(func() (netlink.Link, error) { return h.LinkByName(name) })
	if err != nil {
		return nil
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips
}

func hasIP(ips []net.IP, ip net.IP) bool {
	return slices.ContainsFunc(ips, ip.Equal)
}

func TestIntegrationTwoPods(t *testing.T) {
	tn := newTestNet(t)
	nsA, nsB := newNetNS(t), newNetNS(t)
	a := tn.setup(t, "pod-a", nsA)
	b := tn.setup(t, "pod-b", nsB)
	subnet := netip.MustParsePrefix(tn.cfg.Subnet)
	for _, r := range []Result{a, b} {
		if len(r.IPs) != 1 || r.Interface != "eth0" {
			t.Fatalf("result = %+v, want one address on eth0", r)
		}
		addr, _ := netip.AddrFromSlice(r.IPs[0].To4())
		if !subnet.Contains(addr) {
			t.Errorf("pod address %s not in %s", addr, subnet)
		}
		if !r.Gateway.Equal(net.ParseIP("10.88.0.1")) {
			t.Errorf("gateway = %s, want 10.88.0.1", r.Gateway)
		}
	}
	if a.IPs[0].Equal(b.IPs[0]) {
		t.Fatalf("both pods got %s", a.IPs[0])
	}
	for _, p := range []struct {
		ns string
		ip net.IP
	}{{nsA, a.IPs[0]}, {nsB, b.IPs[0]}} {
		if got := addrsOf(t, p.ns, "eth0"); !hasIP(got, p.ip) {
			t.Errorf("eth0 in %s has %v, want %s", p.ns, got, p.ip)
		}
		// Setup brought lo up.
		h := handleIn(t, p.ns)
		lo, err := h.LinkByName("lo")
		h.Close()
		if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("lo in %s not up: %v", p.ns, err)
		}
	}
	if got := addrsOf(t, tn.host, "cni0"); !hasIP(got, a.Gateway) {
		t.Errorf("bridge cni0 has %v, want the gateway %s", got, a.Gateway)
	}
	if got := tn.veths(t); len(got) != 2 {
		t.Errorf("veths on the node = %v, want 2", got)
	}

	// Pod B reaches pod A over the bridge.
	exchange(t, nsA, nsB, a.IPs[0])

	if err := inNS(tn.host, func() error { return tn.net.Check(context.Background(), "pod-a", nsA) }); err != nil {
		t.Errorf("Check: %v", err)
	}
	err := inNS(tn.host, func() error { _, err := tn.net.Setup(context.Background(), "pod-a", nsA); return err })
	if err == nil || !strings.Contains(err.Error(), "pod pod-a") {
		t.Errorf("second Setup of pod-a: err = %v, want one naming the pod", err)
	}
	if got := tn.allocated(t); len(got) != 2 {
		t.Errorf("allocations after a second Setup = %v, want A's and B's", got)
	}

	if err := tn.teardown("pod-a", nsA); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(t, nsA, "eth0"); got != nil {
		t.Errorf("eth0 in pod A after teardown: %v", got)
	}
	if got := tn.allocated(t); slices.Contains(got, a.IPs[0].String()) || len(got) != 1 {
		t.Errorf("allocations after tearing down A = %v, want only B's %s", got, b.IPs[0])
	}
	if got := tn.veths(t); len(got) != 1 {
		t.Errorf("veths after tearing down A = %v, want 1", got)
	}

	// Idempotent: again, a pod never set up, a pod whose namespace is gone.
	if err := tn.teardown("pod-a", nsA); err != nil {
		t.Errorf("second teardown: %v", err)
	}
	if err := tn.teardown("pod-never", filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("teardown of a pod never set up: %v", err)
	}
	unmountNetNS(nsB)
	if err := tn.teardown("pod-b", nsB); err != nil {
		t.Errorf("teardown after the namespace is gone: %v", err)
	}
	if got := tn.allocated(t); len(got) != 0 {
		t.Errorf("allocations left = %v", got)
	}
	// The kernel destroys a namespace, and the veth with it, in the background.
	deadline := time.Now().Add(10 * time.Second)
	for len(tn.veths(t)) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := tn.veths(t); len(got) != 0 {
		t.Errorf("veths left = %v", got)
	}
}

// exchange sends a line from a socket in nsFrom to a listener in nsTo.
func exchange(t *testing.T, nsTo, nsFrom string, to net.IP) {
	t.Helper()
	var ln net.Listener
	if err := inNS(nsTo, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(to.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- string(b)
	}()
	if err := inNS(nsFrom, func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello over cni0"))
		return err
	}); err != nil {
		t.Fatalf("dial pod at %s: %v", ln.Addr(), err)
	}
	select {
	case s := <-got:
		if s != "hello over cni0" {
			t.Errorf("received %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
}

func TestIntegrationGC(t *testing.T) {
	tn := newTestNet(t)
	nsA, nsB := newNetNS(t), newNetNS(t)
	nsC := newNetNS(t)
	a := tn.setup(t, "pod-a", nsA)
	b := tn.setup(t, "pod-b", nsB)
	c := tn.setup(t, "pod-c", nsC)
	// Pod C's namespace is gone but its pin file is left, as after a
	// reboot with the state on disk.
	unmountNetNS(nsC)
	// As after an agent restart: a fresh Network over the same cache.
	restarted, err := New(tn.netCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := inNS(tn.host, func() error { return restarted.GC(context.Background(), []string{"pod-a"}) }); err != nil {
		t.Fatal(err)
	}
	if got := tn.allocated(t); len(got) != 1 || got[0] != a.IPs[0].String() {
		t.Errorf("allocations after GC = %v, want only A's %s (B had %s, C %s)", got, a.IPs[0], b.IPs[0], c.IPs[0])
	}
	if got := addrsOf(t, nsB, "eth0"); got != nil {
		t.Errorf("eth0 in pod B after GC: %v", got)
	}
	if got := addrsOf(t, nsA, "eth0"); !hasIP(got, a.IPs[0]) {
		t.Errorf("eth0 in pod A after GC has %v, want %s", got, a.IPs[0])
	}
	if err := inNS(tn.host, func() error { return tn.net.GC(context.Background(), nil) }); err != nil {
		t.Fatal(err)
	}
	if got := tn.allocated(t); len(got) != 0 {
		t.Errorf("allocations after GC of all = %v", got)
	}
	if got := tn.veths(t); len(got) != 0 {
		t.Errorf("veths after GC of all = %v", got)
	}
}

func TestIntegrationChurn(t *testing.T) {
	if testing.Short() {
		testenv.Unavailable(t, "the churn takes seconds; not run with -short")
	}
	tn := newTestNet(t)
	ns := newNetNS(t)
	seen := map[string]bool{}
	for i := range churnCycles {
		uid := fmt.Sprintf("pod-%d", i)
		r := tn.setup(t, uid, ns)
		seen[r.IPs[0].String()] = true
		if err := tn.teardown(uid, ns); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
	}
	if got := tn.allocated(t); len(got) != 0 {
		t.Errorf("allocations left after %d cycles: %v", churnCycles, got)
	}
	if got := tn.veths(t); len(got) != 0 {
		t.Errorf("veths left after %d cycles: %v", churnCycles, got)
	}
	if got := addrsOf(t, ns, "eth0"); got != nil {
		t.Errorf("eth0 left in the pod: %v", got)
	}
	h := handleIn(t, ns)
	links, err := retryDump(h.LinkList)
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 {
		t.Errorf("links in the pod after churn = %d, want lo only", len(links))
	}
	t.Logf("%d cycles, %d distinct addresses handed out", churnCycles, len(seen))
}
