package nodetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationPodDNSFiles: a container sees the resolv.conf its
// dnsConfig asks for and the managed /etc/hosts with its FQDN and
// hostAliases, as the Kubernetes docs' examples show; a hostNetwork pod
// sees the node's /etc/hosts under kubelet's header with its hostAliases,
// the node's hostname and, for ClusterFirst, the node's nameservers.
func TestIntegrationPodDNSFiles(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	n := startNode(t)
	n.writeManifest("dns.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: dns-example}
spec:
  hostname: busybox-1
  subdomain: busybox-subdomain
  dnsPolicy: "None"
  dnsConfig:
    nameservers: ["192.0.2.1"]
    searches: ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"]
    options:
    - {name: ndots, value: "2"}
    - {name: edns0}
  hostAliases:
  - ip: "127.0.0.1"
    hostnames: ["foo.local", "bar.local"]
  containers:
  - name: test
    image: "busybox:1.36"
    command: ["sh", "-c", "cat /etc/resolv.conf /etc/hosts; echo dumped; sleep 3600"]
`)
	// The agent has no exec endpoint: the container prints its files to
	// its log instead.
	n.writeManifest("hostnet.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: hostnet-files}
spec:
  hostNetwork: true
  hostAliases:
  - ip: "192.0.2.9"
    hostnames: ["hostnet.local"]
  containers:
  - name: test
    image: "busybox:1.36"
    command: ["sh", "-c", "cat /etc/hosts; echo hosts-end; cat /etc/hostname; cat /etc/resolv.conf; echo dumped; sleep 3600"]
`)
	n.waitPod("dns-example", 2*time.Minute, "Running", running)
	out := n.waitLog(t, "dns-example", "dumped", time.Minute)
	for _, want := range []string{
		"search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 192.0.2.1\noptions ndots:2 edns0\n",
		"# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n",
		"# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the container's files lack %q:\n%s", want, out)
		}
	}
	n.waitPod("hostnet-files", 2*time.Minute, "Running", running)
	out = n.waitLog(t, "hostnet-files", "dumped", time.Minute)
	nodeHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	wantHosts := "# Kubernetes-managed hosts file (host network).\n" + string(nodeHosts) +
		"\n# Entries added by HostAliases.\n192.0.2.9\thostnet.local\nhosts-end\n"
	if !strings.HasPrefix(out, wantHosts) {
		t.Errorf("the hostNetwork container's /etc/hosts is not the node's with kubelet's header and its hostAliases:\n%s\nwant:\n%s", out, wantHosts)
	}
	if hostname, _ := os.Hostname(); !strings.Contains(out, "hosts-end\n"+hostname+"\n") {
		t.Errorf("the hostNetwork container's /etc/hostname is not the node's %q:\n%s", hostname, out)
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(resolv), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" && !strings.Contains(out, "nameserver "+f[1]+"\n") {
			t.Errorf("the hostNetwork container's resolv.conf lacks the node's nameserver %s:\n%s", f[1], out)
		}
	}
}
