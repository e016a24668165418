package podagent_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationPodDNSFiles: a container sees the resolv.conf its
// dnsConfig asks for and the managed /etc/hosts with its FQDN and
// hostAliases, as the Kubernetes docs' examples show.
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
}
