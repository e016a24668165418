package poddns

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const nodeResolv = `# written by podboot's DHCP client
nameserver 192.168.1.1
nameserver 192.168.1.2 ; second
search lan example.com
options edns0 ndots:2
`

func testPod(mutate func(*corev1.PodSpec)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1"},
		Spec:       corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst},
	}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

func TestParseResolvConf(t *testing.T) {
	got := ParseResolvConf([]byte(nodeResolv + "search later.\nsortlist 10.0.0.0\n"))
	want := Config{
		Nameservers: []string{"192.168.1.1", "192.168.1.2"},
		Searches:    []string{"later"}, // the last search line wins, the root dot dropped
		Options:     []string{"edns0", "ndots:2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPodResolvConf(t *testing.T) {
	resolv := ParseResolvConf([]byte(nodeResolv))
	const nodeFile = "search lan example.com\nnameserver 192.168.1.1\nnameserver 192.168.1.2\noptions edns0 ndots:2\n"
	missingClusterDNS := `MissingClusterDNS: pod: "web_shop(u1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`
	two := "2"
	tests := []struct {
		name      string
		inCluster bool
		pod       *corev1.Pod
		want      string
		warnings  []string
	}{
		{
			name: "ClusterFirst on a standalone board is the node's resolver, no warning",
			pod:  testPod(nil),
			want: nodeFile,
		},
		{
			name: "no dnsPolicy (ClusterFirst) on a standalone board, no warning",
			pod:  testPod(func(s *corev1.PodSpec) { s.DNSPolicy = "" }),
			want: nodeFile,
		},
		{
			name: "ClusterFirstWithHostNet on the host's network of a standalone board, no warning",
			pod:  testPod(func(s *corev1.PodSpec) { s.DNSPolicy, s.HostNetwork = corev1.DNSClusterFirstWithHostNet, true }),
			want: nodeFile,
		},
		{
			name:      "ClusterFirst in a cluster without cluster DNS falls back to the node's, with kubelet's warning",
			inCluster: true,
			pod:       testPod(nil),
			want:      nodeFile,
			warnings:  []string{missingClusterDNS},
		},
		{
			name:      "ClusterFirstWithHostNet on the host's network in a cluster without cluster DNS, with kubelet's warning",
			inCluster: true,
			pod:       testPod(func(s *corev1.PodSpec) { s.DNSPolicy, s.HostNetwork = corev1.DNSClusterFirstWithHostNet, true }),
			want:      nodeFile,
			warnings:  []string{missingClusterDNS},
		},
		{
			name:      "ClusterFirst on the host's network is Default, no warning even in a cluster",
			inCluster: true,
			pod:       testPod(func(s *corev1.PodSpec) { s.HostNetwork = true }),
			want:      nodeFile,
		},
		{
			name:      "Default in a cluster, no warning",
			inCluster: true,
			pod:       testPod(func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSDefault }),
			want:      nodeFile,
		},
		{
			name: "Default",
			pod:  testPod(func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSDefault }),
			want: "search lan example.com\nnameserver 192.168.1.1\nnameserver 192.168.1.2\noptions edns0 ndots:2\n",
		},
		{
			name: "None takes dnsConfig only",
			pod: testPod(func(s *corev1.PodSpec) {
				s.DNSPolicy = corev1.DNSNone
				s.DNSConfig = &corev1.PodDNSConfig{
					Nameservers: []string{"1.2.3.4"},
					Searches:    []string{"ns1.svc.cluster-domain.example", "my.dns.search.suffix"},
					Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}},
				}
			}),
			// As the Kubernetes docs' dns-config example shows.
			want: "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 1.2.3.4\noptions ndots:2 edns0\n",
		},
		{
			name: "dnsConfig merged into Default: appended without repeats, options replaced by name",
			pod: testPod(func(s *corev1.PodSpec) {
				s.DNSPolicy = corev1.DNSDefault
				s.DNSConfig = &corev1.PodDNSConfig{
					Nameservers: []string{"192.168.1.2", "9.9.9.9"},
					Searches:    []string{"example.com", "extra"},
					Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "single-request"}},
				}
			}),
			want: "search lan example.com extra\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nnameserver 9.9.9.9\noptions edns0 ndots:2 single-request\n",
		},
		{
			name: "more than 3 nameservers are cut, with kubelet's warning",
			pod: testPod(func(s *corev1.PodSpec) {
				s.DNSPolicy = corev1.DNSDefault
				s.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"8.8.8.8", "9.9.9.9"}}
			}),
			want:     "search lan example.com\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nnameserver 8.8.8.8\noptions edns0 ndots:2\n",
			warnings: []string{"DNSConfigForming: Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 192.168.1.1 192.168.1.2 8.8.8.8"},
		},
		{
			name: "None without dnsConfig is an empty file",
			pod:  testPod(func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSNone }),
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warnings := PodResolvConf(tt.pod, Node{ResolvConf: resolv, InCluster: tt.inCluster})
			if diff := cmp.Diff(tt.want, string(c.Bytes())); diff != "" {
				t.Errorf("resolv.conf (-want +got):\n%s", diff)
			}
			var got []string
			for _, w := range warnings {
				got = append(got, w.Reason+": "+w.Message)
			}
			if diff := cmp.Diff(tt.warnings, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchLimits(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("%s%02d", strings.Repeat("d", 60), i))
	}
	pod := testPod(func(s *corev1.PodSpec) {
		s.DNSPolicy = corev1.DNSNone
		s.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: many}
	})
	c, warnings := PodResolvConf(pod, Node{})
	if n := len(strings.Join(c.Searches, " ")); n > maxSearchListChars || len(c.Searches) > maxSearchPaths {
		t.Errorf("search line kept %d domains, %d characters", len(c.Searches), n)
	}
	if len(warnings) != 1 || warnings[0].Reason != "DNSConfigForming" || !strings.HasPrefix(warnings[0].Message, "Search Line limits were exceeded") {
		t.Errorf("warnings %+v", warnings)
	}
}

func TestHosts(t *testing.T) {
	aliases := []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: []string{"foo.local", "bar.local"}}, {IP: "10.1.2.3", Hostnames: []string{"foo.remote", "bar.remote"}}}
	tests := []struct {
		name string
		pod  *corev1.Pod
		ips  []string
		want string
	}{
		{
			name: "pod name as hostname",
			pod:  testPod(nil),
			ips:  []string{"10.88.0.5"},
			want: managedHeader + loopbackEntries + "10.88.0.5\tweb\n",
		},
		{
			name: "hostname and subdomain give the FQDN",
			pod:  testPod(func(s *corev1.PodSpec) { s.Hostname = "busybox-1"; s.Subdomain = "busybox-subdomain" }),
			ips:  []string{"10.88.0.5"},
			want: managedHeader + loopbackEntries + "10.88.0.5\tbusybox-1.busybox-subdomain.shop.svc.cluster.local\tbusybox-1\n",
		},
		{
			// As the Kubernetes docs' hostaliases-pod example shows.
			name: "hostAliases",
			pod:  testPod(func(s *corev1.PodSpec) { s.HostAliases = aliases }),
			ips:  []string{"10.88.0.5"},
			want: managedHeader + loopbackEntries + "10.88.0.5\tweb\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\tbar.remote\n",
		},
		{
			name: "no pod IP yet",
			pod:  testPod(nil),
			want: managedHeader + loopbackEntries,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(podHosts(tt.pod, tt.ips))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	got := string(NodeHosts([]byte("127.0.0.1 localhost\n192.168.1.5 board"), testPod(func(s *corev1.PodSpec) { s.HostAliases = aliases[:1] })))
	want := "127.0.0.1 localhost\n192.168.1.5 board\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NodeHosts (-want +got):\n%s", diff)
	}
}

func TestHostnameTruncated(t *testing.T) {
	pod := testPod(nil)
	pod.Name = strings.Repeat("a", 62) + "-b"
	if h, _ := Hostname(pod); h != strings.Repeat("a", 62) {
		t.Errorf("hostname %q: want 63 characters cut and the trailing dash dropped", h)
	}
}

func podHosts(pod *corev1.Pod, ips []string) []byte {
	hostname, domain := Hostname(pod)
	return PodHosts(hostname, domain, ips, pod.Spec.HostAliases)
}
