package nodetest

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/netsetup/hostport"
	"github.com/podboot/podboot/netsetup/podnet"
	"github.com/podboot/podboot/tools/imagebuild"
)

// The node's wire to a second host, in TEST-NET-1 (RFC 5737): addresses
// that exist only in the namespaces the test makes.
const (
	nodeAddr = "192.0.2.2"
	peerAddr = "192.0.2.1"
	// netechoImage runs testdata/netecho: busybox has no UDP server.
	netechoImage = "podboot.test/netecho:1"
)

// netNode is a whole node in a network namespace of the test's, with the
// pod network on (bin/cni's bridge and host-local), wired by a veth to a
// second host, peer, which is also its default gateway: the world
// outside the board.
type netNode struct {
	*node
	ns, peer *testenv.NetNS
}

func startNetNode(t *testing.T, setup ...func(flash string)) *netNode {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Unavailable(t, "needs nsenter (util-linux)")
	}
	requireNode(t)
	ns, peer := testenv.NewNetNS(t), testenv.NewNetNS(t)
	testenv.Link(t, ns, "eth0", nodeAddr+"/24", peer, "eth0", peerAddr+"/24")
	ns.DefaultRoute(t, peerAddr)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\nsearch lan.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setup = append([]func(string){addNetechoImage(t)}, setup...)
	n := startNodeWith(t, nodeOptions{netns: ns, podNetwork: true, resolvConf: resolv}, setup...)
	return &netNode{node: n, ns: ns, peer: peer}
}

// addNetechoImage builds testdata/netecho static and puts it, with
// busybox, in the flash's images as netechoImage.
func addNetechoImage(t *testing.T) func(flash string) {
	bin := filepath.Join(t.TempDir(), "netecho")
	build := exec.Command("go", "build", "-o", bin, "./testdata/netecho")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		testenv.Unavailable(t, "build testdata/netecho: %v\n%s", err, out)
	}
	return func(flash string) {
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		img, err := imagebuild.Build(imagebuild.Spec{
			Tags: []string{netechoImage}, Arch: runtimeArch(), Busybox: testenv.Busybox,
			Entrypoint: []string{"/netecho"},
			Files:      []imagebuild.File{{Path: "/netecho", Mode: fs.FileMode(0o755), Data: data}},
		})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(flash, "images", testenv.ArchiveName(netechoImage))
		if err := imagebuild.WriteDockerArchive(path, map[string]v1.Image{netechoImage: img}); err != nil {
			t.Fatal(err)
		}
	}
}

// podNS is the pod's network namespace as its sandbox pinned it: a
// socket opened there is the pod's, as a container's would be.
func (n *netNode) podNS(p *corev1.Pod) *testenv.NetNS {
	return &testenv.NetNS{Path: filepath.Join(n.state, "netns", string(p.UID), "net")}
}

// hostPorts is the node's published ports by pod UID, read back from its
// nftables ruleset.
func (n *netNode) hostPorts(t *testing.T) map[string][]hostport.Port {
	t.Helper()
	fd, err := syscall.Open(n.ns.Path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	m, err := hostport.New(hostport.Options{NetNS: fd})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// links is the node namespace's link names, sorted.
func (n *netNode) links(t *testing.T) []string {
	t.Helper()
	ls, err := n.ns.Handle(t).LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// allocations is host-local's allocated addresses: one file per address
// in its data directory, besides its lock and last_reserved_ip.* files.
func (n *netNode) allocations(t *testing.T) []string {
	t.Helper()
	dir := filepath.Join(n.state, "cni", "networks", podnet.NetworkName)
	entries, err := os.ReadDir(dir)
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

func (n *netNode) mustAsk(t *testing.T, from *testenv.NetNS, network, addr, want string) {
	t.Helper()
	got, err := from.Ask(network, addr)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	if got != want {
		t.Errorf("%s %s answered %q, want %q", network, addr, got, want)
	}
}

// eventuallyAsk is mustAsk for a server that may still be starting: a
// Running container has not necessarily bound its port yet.
func (n *netNode) eventuallyAsk(t *testing.T, from *testenv.NetNS, network, addr, want string) {
	t.Helper()
	var got string
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got, err = from.Ask(network, addr); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	if got != want {
		t.Errorf("%s %s answered %q, want %q", network, addr, got, want)
	}
}

func withIP(p *corev1.Pod) bool { return running(p) && p.Status.PodIP != "" }

// TestIntegrationPodNetwork runs a whole node in network namespaces of
// its own, with the pod network on, and checks Kubernetes' network model
// on it: pods have their own addresses and reach each other, the node and
// the world outside (masqueraded), containers of a pod share localhost, a
// hostPort answers on the node's addresses for another host, the node
// itself and pods, a hostNetwork pod is on the node's address, and the
// pods' resolv.conf and hosts follow kubelet's. Deleting pods releases
// their addresses, veths and rules; an agent restart keeps the running
// pods' addresses and collects an attachment no sandbox owns.
func TestIntegrationPodNetwork(t *testing.T) {
	n := startNetNode(t)
	n.writeManifest("web.yaml", fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: echo
    image: %[1]s
    args: ["-name", "web", "-addr", ":8080"]
    ports:
    - {containerPort: 8080, hostPort: 18080, protocol: TCP}
    - {containerPort: 8080, hostPort: 18080, protocol: UDP}
  - name: side
    image: busybox:1.36
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do echo hi | nc 127.0.0.1 8080; sleep 1; done"]
`, netechoImage))
	n.writeManifest("client.yaml", fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: echo
    image: %[1]s
    args: ["-name", "client", "-addr", ":8080"]
  - name: files
    image: busybox:1.36
    command: ["sh", "-c", "trap 'exit 0' TERM; cat /etc/resolv.conf /etc/hosts /etc/hostname; echo dumped; while true; do sleep 1; done"]
`, netechoImage))
	n.writeManifest("hostnet.yaml", fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: hostnet}
spec:
  hostNetwork: true
  containers:
  - name: echo
    image: %[1]s
    args: ["-name", "hostnet", "-addr", ":18081"]
`, netechoImage))
	web := n.waitPod("web", 2*time.Minute, "Running with an IP", withIP)
	client := n.waitPod("client", 2*time.Minute, "Running with an IP", withIP)
	hostnet := n.waitPod("hostnet", 2*time.Minute, "Running", running)
	webAddr := web.Status.PodIP + ":8080"

	t.Run("addresses", func(t *testing.T) {
		subnet := netip.MustParsePrefix("10.88.0.0/16")
		for _, p := range []*corev1.Pod{web, client} {
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil || !subnet.Contains(ip) || ip == netip.MustParseAddr("10.88.0.1") {
				t.Errorf("pod %s: podIP %q, want a pod address in %s", p.Name, p.Status.PodIP, subnet)
			}
			if len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP {
				t.Errorf("pod %s: podIPs %v, want [%s]", p.Name, p.Status.PodIPs, p.Status.PodIP)
			}
			if p.Status.HostIP != nodeAddr {
				t.Errorf("pod %s: hostIP %q, want the node's %s", p.Name, p.Status.HostIP, nodeAddr)
			}
		}
		if web.Status.PodIP == client.Status.PodIP {
			t.Errorf("web and client share podIP %s", web.Status.PodIP)
		}
		if hostnet.Status.PodIP != nodeAddr || hostnet.Status.HostIP != nodeAddr {
			t.Errorf("hostNetwork pod: podIP %q hostIP %q, want both the node's %s", hostnet.Status.PodIP, hostnet.Status.HostIP, nodeAddr)
		}
	})

	t.Run("pod to pod", func(t *testing.T) {
		// The first contacts wait for the servers to bind.
		n.eventuallyAsk(t, n.podNS(client), "tcp", webAddr, "web "+client.Status.PodIP)
		n.mustAsk(t, n.podNS(client), "udp", webAddr, "web "+client.Status.PodIP)
		n.eventuallyAsk(t, n.podNS(web), "tcp", client.Status.PodIP+":8080", "client "+web.Status.PodIP)
	})

	t.Run("containers of a pod share localhost", func(t *testing.T) {
		// The side container's nc to 127.0.0.1:8080 is answered by the
		// echo container.
		n.waitContainerLog(t, "web", "side", "web 127.0.0.1", time.Minute)
	})

	t.Run("pod to node", func(t *testing.T) {
		n.ns.Serve(t, "node", ":7070")
		// The node sees the pod's own address: no NAT inside the board.
		n.mustAsk(t, n.podNS(client), "tcp", nodeAddr+":7070", "node "+client.Status.PodIP)
		n.mustAsk(t, n.podNS(client), "tcp", "10.88.0.1:7070", "node "+client.Status.PodIP)
	})

	t.Run("pod to outside, masqueraded", func(t *testing.T) {
		n.peer.Serve(t, "outside", peerAddr+":7071")
		n.mustAsk(t, n.podNS(client), "tcp", peerAddr+":7071", "outside "+nodeAddr)
		n.mustAsk(t, n.podNS(client), "udp", peerAddr+":7071", "outside "+nodeAddr)
	})

	t.Run("hostPort", func(t *testing.T) {
		// From another host the client's address is kept, as portmap does.
		n.mustAsk(t, n.peer, "tcp", nodeAddr+":18080", "web "+peerAddr)
		n.mustAsk(t, n.peer, "udp", nodeAddr+":18080", "web "+peerAddr)
		// From the node itself, on its address and on 127.0.0.1, and from
		// a pod (hairpin through the bridge).
		for _, from := range []struct {
			name string
			ns   *testenv.NetNS
			addr string
		}{
			{"node", n.ns, nodeAddr + ":18080"},
			{"node loopback", n.ns, "127.0.0.1:18080"},
			{"pod", n.podNS(client), nodeAddr + ":18080"},
			{"the pod itself", n.podNS(web), nodeAddr + ":18080"},
		} {
			got, err := from.ns.Ask("tcp", from.addr)
			if err != nil || !strings.HasPrefix(got, "web ") {
				t.Errorf("hostPort from %s to %s: %q, %v; want web's answer", from.name, from.addr, got, err)
			}
		}
		if _, err := n.peer.Ask("tcp", nodeAddr+":18079"); err == nil {
			t.Errorf("port 18079, published by no pod, answered")
		}
	})

	t.Run("hostNetwork", func(t *testing.T) {
		n.eventuallyAsk(t, n.peer, "tcp", nodeAddr+":18081", "hostnet "+peerAddr)
		n.mustAsk(t, n.peer, "udp", nodeAddr+":18081", "hostnet "+peerAddr)
		// (UDP from a pod is left out: a server bound to the wildcard
		// answers from the address routing picks, cni0's, not the one
		// asked, as on any multi-homed Linux host.)
		n.mustAsk(t, n.podNS(client), "tcp", nodeAddr+":18081", "hostnet "+client.Status.PodIP)
	})

	t.Run("DNS files", func(t *testing.T) {
		out := n.waitContainerLog(t, "client", "files", "dumped", time.Minute)
		for _, want := range []string{
			// ClusterFirst without cluster DNS is Default: the node's file.
			"search lan.test\nnameserver 192.0.2.53\n",
			"# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n",
			client.Status.PodIP + "\tclient\n",
			"\nclient\ndumped",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the client's files lack %q:\n%s", want, out)
			}
		}
		// A standalone board has no cluster DNS by design: no warning.
		if desc := n.mustKubectl("describe", "pod", "client"); strings.Contains(desc, "MissingClusterDNS") {
			t.Errorf("describe pod client shows a MissingClusterDNS warning on a standalone node:\n%s", desc)
		}
	})

	t.Run("agent restart", func(t *testing.T) {
		// A leftover: an attachment made the way the agent makes them,
		// for a pod no sandbox knows (a creation cut short).
		leftover := testenv.NewNetNS(t)
		net := n.podNetwork(t)
		var leftIP string
		if err := n.ns.Do(func() error {
			res, err := net.Setup(context.Background(), "leftover-uid", leftover.Path)
			if err == nil && len(res.IPs) > 0 {
				leftIP = res.IPs[0].String()
			}
			return err
		}); err != nil {
			t.Fatalf("leftover attachment: %v", err)
		}
		if !slices.Contains(n.allocations(t), leftIP) {
			t.Fatalf("the leftover's %s is not allocated: %v", leftIP, n.allocations(t))
		}
		before := len(n.links(t))
		n.killAgent(t)
		// The restarted agent collects the leftover and keeps the pods.
		deadline := time.Now().Add(time.Minute)
		for slices.Contains(n.allocations(t), leftIP) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		if slices.Contains(n.allocations(t), leftIP) {
			t.Errorf("the leftover's %s is still allocated after the agent restart", leftIP)
		}
		if got := len(n.links(t)); got != before-1 {
			t.Errorf("%d links after the restart, want %d (the leftover's veth gone): %v", got, before-1, n.links(t))
		}
		again := n.waitPod("web", time.Minute, "Running", withIP)
		if again.Status.PodIP != web.Status.PodIP {
			t.Errorf("web's podIP %s after the agent restart, was %s", again.Status.PodIP, web.Status.PodIP)
		}
		if cs := containerStatus(again, "echo"); cs == nil || cs.RestartCount != 0 {
			t.Errorf("web's echo container restarted with the agent: %+v", cs)
		}
		n.mustAsk(t, n.peer, "tcp", nodeAddr+":18080", "web "+peerAddr)
	})

	t.Run("delete releases the address, veth and rules", func(t *testing.T) {
		linksBefore := n.links(t)
		for _, name := range []string{"web", "client"} {
			n.removeManifest(name + ".yaml")
			n.waitGone(name, time.Minute)
		}
		if got := n.allocations(t); len(got) != 0 {
			t.Errorf("addresses still allocated: %v", got)
		}
		if got := n.hostPorts(t); len(got) != 0 {
			t.Errorf("hostPort rules left: %v", got)
		}
		if got := n.links(t); len(got) != len(linksBefore)-2 || slices.ContainsFunc(got, isVeth) {
			t.Errorf("links after deleting both pods: %v (before: %v)", got, linksBefore)
		}
		if _, err := n.peer.Ask("tcp", nodeAddr+":18080"); err == nil {
			t.Errorf("hostPort 18080 still answers after its pod went")
		}
	})
}

func isVeth(name string) bool { return strings.HasPrefix(name, "veth") }

// podNetwork is the agent's pod network as the agent configures it.
func (n *netNode) podNetwork(t *testing.T) *podnet.Network {
	t.Helper()
	list, err := podnet.Conflist(device.PodNetwork{}, filepath.Join(n.state, "cni", "networks"))
	if err != nil {
		t.Fatal(err)
	}
	net, err := podnet.New(podnet.Config{
		PluginDirs: []string{filepath.Join(repoRoot(t), "bin", "cni")},
		Conflist:   list,
		CacheDir:   filepath.Join(n.state, "cni", "cache"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// killAgent kills the node's podagent; devnode's supervisor starts it
// again, as PID 1 does on a board. It returns once the new one answers.
func (n *node) killAgent(t *testing.T) {
	t.Helper()
	pids := procsOf("podagent", "--state "+n.state+" ")
	if len(pids) != 1 {
		t.Fatalf("podagent processes of this node: %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if now := procsOf("podagent", "--state "+n.state+" "); len(now) == 1 && now[0] != pids[0] {
			if resp, err := n.http.Get(n.url + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("podagent not back within a minute after SIGKILL\n%s", tail(n.stderr.String(), 40))
}

// waitContainerLog waits for want in one container's log.
func (n *node) waitContainerLog(t *testing.T, pod, container, want string, timeout time.Duration) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, _ = n.kubectl("logs", pod, "-c", container)
		if strings.Contains(out, want) {
			return out
		}
	}
	t.Fatalf("log of %s/%s lacks %q after %v:\n%s", pod, container, want, timeout, out)
	return ""
}

// Churn: churnRounds rounds of churnBatch pods created and deleted
// through the agent, 500 pod lifetimes in all.
const (
	churnRounds = 50
	churnBatch  = 10
)

// TestIntegrationPodNetworkChurn creates and deletes 500 pods, each with
// a hostPort, through the agent; every pod gets an address and answers on
// its hostPort, and at the end no veth, address, hostPort rule, host-local
// allocation, CNI cache entry or pinned namespace is left.
func TestIntegrationPodNetworkChurn(t *testing.T) {
	n := startNetNode(t)
	seen := map[string]bool{}
	for round := range churnRounds {
		names := make([]string, churnBatch)
		for slot := range churnBatch {
			names[slot] = fmt.Sprintf("churn-%d-%d", round, slot)
			n.writeManifest(names[slot]+".yaml", fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: %[1]s}
spec:
  containers:
  - name: echo
    image: %[2]s
    args: ["-name", "%[1]s", "-addr", ":8080"]
    ports: [{containerPort: 8080, hostPort: %[3]d}]
`, names[slot], netechoImage, 20000+slot))
		}
		for slot, name := range names {
			p := n.waitPod(name, 2*time.Minute, "Running with an IP", withIP)
			seen[p.Status.PodIP] = true
			n.eventuallyAsk(t, n.peer, "tcp", fmt.Sprintf("%s:%d", nodeAddr, 20000+slot), name+" "+peerAddr)
		}
		for _, name := range names {
			n.removeManifest(name + ".yaml")
		}
		for _, name := range names {
			n.waitGone(name, 2*time.Minute)
		}
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	t.Logf("%d pods had %d distinct addresses", churnRounds*churnBatch, len(seen))

	if got := n.links(t); !slices.Equal(got, []string{"cni0", "eth0", "lo"}) {
		t.Errorf("links left in the node's namespace: %v, want [cni0 eth0 lo]", got)
	}
	br, err := n.ns.Handle(t).LinkByName("cni0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := n.ns.Handle(t).AddrList(br, syscall.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.88.0.1/16" {
		t.Errorf("cni0's addresses: %v, want only the gateway 10.88.0.1/16", addrs)
	}
	if got := n.allocations(t); len(got) != 0 {
		t.Errorf("host-local allocations left: %v", got)
	}
	if got := n.hostPorts(t); len(got) != 0 {
		t.Errorf("hostPort rules left: %v", got)
	}
	for _, dir := range []string{filepath.Join(n.state, "netns"), filepath.Join(n.state, "cni", "cache", "results")} {
		if entries, err := os.ReadDir(dir); err == nil && len(entries) != 0 {
			t.Errorf("%s still has %d entries", dir, len(entries))
		}
	}
}
