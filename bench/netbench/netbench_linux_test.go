package netbench

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/netsetup/hostport"
	"github.com/podboot/podboot/netsetup/podnet"
)

var streamMiB = flag.Int("netbench.mib", 256, "MiB streamed per throughput measurement")

const podSubnet = "10.88.0.0/16"

// node is a pod network like the agent's, in a namespace of its own: the
// bridge cni0 and the pods' veths live there, and the CNI plugins run
// there.
type node struct {
	dir string // namespace pins, libcni's cache, host-local's allocations
	ns  *netNS
	net *podnet.Network
}

func newNode(b *testing.B) *node {
	b.Helper()
	testenv.RequireRoot(b)
	root, err := testenv.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	plugins := filepath.Join(root, "bin", "cni")
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(plugins, p)); err != nil {
			testenv.Unavailable(b, "needs the CNI plugins in %s: run make build", plugins)
		}
	}
	dir := b.TempDir()
	conf, err := podnet.Conflist(device.PodNetwork{Bridge: "cni0", Subnet: podSubnet}, filepath.Join(dir, "ipam"))
	if err != nil {
		b.Fatal(err)
	}
	pn, err := podnet.New(podnet.Config{PluginDirs: []string{plugins}, Conflist: conf, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		b.Fatal(err)
	}
	n := &node{dir: dir, ns: mustNetNS(b, dir, "node"), net: pn}
	addrUp(b, n.ns.handle(b), "lo", "")
	return n
}

// setup attaches pod and times Setup alone (not the move into the node's
// namespace around it).
func (n *node) setup(uid string, pod *netNS) (podnet.Result, time.Duration, error) {
	var r podnet.Result
	var took time.Duration
	err := n.ns.in(func() error {
		start := time.Now()
		var err error
		r, err = n.net.Setup(context.Background(), uid, pod.path)
		took = time.Since(start)
		return err
	})
	return r, took, err
}

func (n *node) teardown(uid string, pod *netNS) (time.Duration, error) {
	var took time.Duration
	err := n.ns.in(func() error {
		start := time.Now()
		err := n.net.Teardown(context.Background(), uid, pod.path)
		took = time.Since(start)
		return err
	})
	return took, err
}

// mustPod is a pod namespace attached to the node until the benchmark ends.
func (n *node) mustPod(b *testing.B, uid string) (*netNS, netip.Addr) {
	b.Helper()
	pod := mustNetNS(b, n.dir, uid)
	r, _, err := n.setup(uid, pod)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.teardown(uid, pod) })
	ip, _ := netip.AddrFromSlice(r.IPs[0].To4())
	return pod, ip
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkSetupTeardown attaches and detaches one pod per iteration, each
// in a fresh namespace (made and removed outside the timed calls), and
// reports the percentiles of Setup and Teardown. ns/op includes making and
// removing the namespace.
func BenchmarkSetupTeardown(b *testing.B) {
	n := newNode(b)
	var setups, teardowns []float64
	for i := range b.N {
		uid := fmt.Sprintf("pod-%d", i)
		pod, err := newNetNS(n.dir, uid)
		if err != nil {
			b.Fatal(err)
		}
		_, setup, err := n.setup(uid, pod)
		if err != nil {
			pod.close()
			b.Fatal(err)
		}
		teardown, err := n.teardown(uid, pod)
		pod.close() // unpins and removes the file
		if err != nil {
			b.Fatal(err)
		}
		setups, teardowns = append(setups, ms(setup)), append(teardowns, ms(teardown))
	}
	b.ReportMetric(Percentile(setups, 50), "setup-p50-ms")
	b.ReportMetric(Percentile(setups, 99), "setup-p99-ms")
	b.ReportMetric(Percentile(teardowns, 50), "teardown-p50-ms")
	b.ReportMetric(Percentile(teardowns, 99), "teardown-p99-ms")
}

// path is one way through the network: a client in from dials addr, which
// ends at ln.
type path struct {
	name string
	from *netNS
	addr string
	ln   net.Listener
}

func (p path) stream(size int64) (float64, error) {
	return Stream(p.ln, func() (net.Conn, error) {
		var c net.Conn
		err := p.from.in(func() error {
			var err error
			c, err = net.DialTimeout("tcp4", p.addr, 5*time.Second)
			return err
		})
		return c, err
	}, size)
}

// listen makes a TCP listener in ns, closed at cleanup.
func listen(b *testing.B, ns *netNS, addr string) net.Listener {
	b.Helper()
	var ln net.Listener
	if err := ns.in(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		b.Fatalf("listen on %s in %s: %v", addr, ns.path, err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln
}

// BenchmarkThroughput streams -netbench.mib over three paths, in turn,
// b.N times each, and reports each path's median MB/s and the ratios to
// the veth pair:
//
//	veth:       namespace → namespace over a plain veth pair (no bridge, no nftables)
//	pod-to-pod: pod A → pod B's address, over the bridge
//	hostport:   peer host → node 192.0.2.1:8080 → DNAT → pod B:5201
//
// The node has podboot's nftables table (masquerade and pod B's hostPort),
// as on a board, for all three paths that cross it.
func BenchmarkThroughput(b *testing.B) {
	n := newNode(b)
	podA, _ := n.mustPod(b, "pod-a")
	podB, ipB := n.mustPod(b, "pod-b")
	peer := mustNetNS(b, n.dir, "peer")
	vethPair(b, n.ns, "ext0", "192.0.2.1/24", peer, "eth0", "192.0.2.2/24")
	hp, err := hostport.New(hostport.Options{NetNS: n.ns.fd, PodSubnets: []netip.Prefix{netip.MustParsePrefix(podSubnet)}, Bridge: "cni0"})
	if err != nil {
		b.Fatal(err)
	}
	if err := hp.EnsureBase(); err != nil {
		b.Fatal(err)
	}
	if err := hp.Add("pod-b", ipB, []hostport.Port{{Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 5201}}); err != nil {
		b.Fatal(err)
	}
	left, right := mustNetNS(b, n.dir, "veth-left"), mustNetNS(b, n.dir, "veth-right")
	vethPair(b, left, "eth0", "10.99.0.1/24", right, "eth0", "10.99.0.2/24")

	lnPod := listen(b, podB, ":5201")
	paths := []path{
		{"veth", left, "10.99.0.2:5201", listen(b, right, "10.99.0.2:5201")},
		{"pod-to-pod", podA, netip.AddrPortFrom(ipB, 5201).String(), lnPod},
		{"hostport", peer, "192.0.2.1:8080", lnPod}, // nothing listens on the node: only the DNAT reaches pod B
	}
	size := int64(*streamMiB) << 20
	for _, p := range paths { // warm-up: ARP, conntrack, TCP's first windows
		if _, err := p.stream(size / 4); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
	}
	rates := map[string][]float64{}
	b.ResetTimer()
	for i := range b.N {
		for j := range paths { // rotated, so no path always follows another
			p := paths[(i+j)%len(paths)]
			mbps, err := p.stream(size)
			if err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			rates[p.name] = append(rates[p.name], mbps)
		}
	}
	veth := Percentile(rates["veth"], 50)
	for _, p := range paths {
		b.ReportMetric(Percentile(rates[p.name], 50), p.name+"-MB/s")
	}
	b.ReportMetric(Percentile(rates["pod-to-pod"], 50)/veth, "pod-to-pod/veth")
	b.ReportMetric(Percentile(rates["hostport"], 50)/veth, "hostport/veth")
}
