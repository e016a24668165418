package reconcile

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// TestPodDNS: the sandbox gets the pod's resolv.conf made from the node's
// and the pod's dnsPolicy and dnsConfig, its domain and hostAliases; a
// ClusterFirst pod gets the node's resolver, with kubelet's
// MissingClusterDNS warning only on a node that is part of a cluster (a
// standalone board has no cluster DNS by design).
func TestPodDNS(t *testing.T) {
	for _, inCluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("inCluster=%t", inCluster), func(t *testing.T) { testPodDNS(t, inCluster) })
	}
}

func testPodDNS(t *testing.T, inCluster bool) {
	node := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(node, []byte("nameserver 192.168.1.1\nsearch lan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		e.m.cfg.ResolvConf = node
		e.m.cfg.InCluster = inCluster

		custom := newTestPod("u1", corev1.RestartPolicyAlways, "app")
		custom.Name = "custom"
		custom.Spec.DNSPolicy = corev1.DNSNone
		custom.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.2.3.4"}, Searches: []string{"my.dns.search.suffix"}}
		custom.Spec.Hostname, custom.Spec.Subdomain = "db-0", "db"
		custom.Spec.HostAliases = []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.remote"}}}
		plain := newTestPod("u2", corev1.RestartPolicyAlways, "app")
		plain.Name = "plain"
		plain.Spec.DNSPolicy = corev1.DNSClusterFirst
		e.m.SetDesired([]*corev1.Pod{custom, plain})
		e.run()
		defer e.stop()

		cfg, ok := rt.SandboxConfig("u1")
		if !ok {
			t.Fatal("no sandbox for custom")
		}
		if got, want := string(cfg.ResolvConf), "search my.dns.search.suffix\nnameserver 1.2.3.4\n"; got != want {
			t.Errorf("custom resolv.conf %q, want %q", got, want)
		}
		if cfg.Hostname != "db-0" || cfg.Domain != "db.default.svc.cluster.local" || len(cfg.HostAliases) != 1 {
			t.Errorf("custom hostname %q domain %q aliases %v", cfg.Hostname, cfg.Domain, cfg.HostAliases)
		}
		cfg, _ = rt.SandboxConfig("u2")
		if got, want := string(cfg.ResolvConf), "search lan\nnameserver 192.168.1.1\n"; got != want {
			t.Errorf("plain resolv.conf %q, want the node's %q", got, want)
		}
		events := e.rec.take()
		warned := slices.ContainsFunc(events, func(ev string) bool {
			return strings.HasPrefix(ev, "u2 Warning MissingClusterDNS : pod: \"plain_default(u2)\". kubelet does not have ClusterDNS IP configured")
		})
		if warned != inCluster {
			t.Errorf("MissingClusterDNS warning for the ClusterFirst pod: %t, want %t (in a cluster only):\n%s", warned, inCluster, strings.Join(events, "\n"))
		}
		if slices.ContainsFunc(events, func(ev string) bool { return strings.HasPrefix(ev, "u1 Warning MissingClusterDNS") }) {
			t.Error("MissingClusterDNS for a dnsPolicy None pod")
		}
	})
}
