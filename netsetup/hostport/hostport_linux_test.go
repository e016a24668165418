package hostport

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestFromContainerPort(t *testing.T) {
	for _, c := range []struct {
		name    string
		in      corev1.ContainerPort
		want    Port
		wantErr string
	}{
		{"empty protocol is TCP", corev1.ContainerPort{HostPort: 8080, ContainerPort: 80}, Port{Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 80}, ""},
		{"UDP with hostIP", corev1.ContainerPort{Protocol: corev1.ProtocolUDP, HostPort: 53, ContainerPort: 5353, HostIP: "192.0.2.1"},
			Port{Protocol: corev1.ProtocolUDP, HostPort: 53, ContainerPort: 5353, HostIP: netip.MustParseAddr("192.0.2.1")}, ""},
		{"IPv6 hostIP", corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "2001:db8::1"},
			Port{Protocol: corev1.ProtocolTCP, HostPort: 80, ContainerPort: 80, HostIP: netip.MustParseAddr("2001:db8::1")}, ""},
		{"v4-mapped hostIP unmapped", corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "::ffff:192.0.2.1"},
			Port{Protocol: corev1.ProtocolTCP, HostPort: 80, ContainerPort: 80, HostIP: netip.MustParseAddr("192.0.2.1")}, ""},
		{"SCTP unsupported", corev1.ContainerPort{Protocol: corev1.ProtocolSCTP, HostPort: 9000, ContainerPort: 9000}, Port{}, "SCTP is unsupported"},
		{"unknown protocol", corev1.ContainerPort{Protocol: "ICMP", HostPort: 9000, ContainerPort: 9000}, Port{}, `unknown protocol "ICMP"`},
		{"hostPort too large", corev1.ContainerPort{HostPort: 70000, ContainerPort: 80}, Port{}, "hostPort 70000: out of range"},
		{"negative hostPort", corev1.ContainerPort{HostPort: -1, ContainerPort: 80}, Port{}, "out of range"},
		{"containerPort missing", corev1.ContainerPort{HostPort: 80}, Port{}, "containerPort 0 out of range"},
		{"bad hostIP", corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "board"}, Port{}, `hostIP "board"`},
		{"zoned hostIP", corev1.ContainerPort{HostPort: 80, ContainerPort: 80, HostIP: "fe80::1%eth0"}, Port{}, "zones are unsupported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromContainerPort(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got, addrCmp); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPodPorts(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "sidecar", Ports: []corev1.ContainerPort{{HostPort: 9100, ContainerPort: 9100}}}},
			Containers: []corev1.Container{
				{Name: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 80}, {HostPort: 8080, ContainerPort: 80}}},
				{Name: "sctp", Ports: []corev1.ContainerPort{{Protocol: corev1.ProtocolSCTP, HostPort: 7000, ContainerPort: 7000}}},
			},
		},
	}
	got, err := PodPorts(pod)
	want := []Port{{Protocol: corev1.ProtocolTCP, HostPort: 9100, ContainerPort: 9100}, {Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 80}}
	if d := cmp.Diff(want, got, addrCmp); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if err == nil || !strings.Contains(err.Error(), `pod default/web container "sctp"`) || !strings.Contains(err.Error(), "SCTP") {
		t.Errorf("error %v, want one naming the pod, container sctp and SCTP", err)
	}
	if _, err := PodPorts(nil); err == nil {
		t.Error("nil pod: no error")
	}
}

// As HostPortInfo.CheckConflict (pkg/scheduler/framework/types.go).
func TestConflicts(t *testing.T) {
	tcp := func(ip string, port int32) Port {
		p := Port{Protocol: corev1.ProtocolTCP, HostPort: port, ContainerPort: 80}
		if ip != "" {
			p.HostIP = netip.MustParseAddr(ip)
		}
		return p
	}
	udp := tcp("", 8080)
	udp.Protocol = corev1.ProtocolUDP
	for _, c := range []struct {
		name string
		a, b Port
		want bool
	}{
		{"same port any IP", tcp("", 8080), tcp("", 8080), true},
		{"other port", tcp("", 8080), tcp("", 8081), false},
		{"other protocol", tcp("", 8080), udp, false},
		{"any IP against specific", tcp("", 8080), tcp("192.0.2.1", 8080), true},
		{"0.0.0.0 against specific", tcp("0.0.0.0", 8080), tcp("192.0.2.1", 8080), true},
		{"same specific", tcp("192.0.2.1", 8080), tcp("192.0.2.1", 8080), true},
		{"different specific", tcp("192.0.2.1", 8080), tcp("192.0.2.2", 8080), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.conflicts(c.b); got != c.want {
				t.Errorf("%s conflicts %s = %v, want %v", c.a, c.b, got, c.want)
			}
			if got := c.b.conflicts(c.a); got != c.want {
				t.Errorf("symmetric: %s conflicts %s = %v, want %v", c.b, c.a, got, c.want)
			}
		})
	}
}

func TestCheckAdd(t *testing.T) {
	pod := netip.MustParseAddr("10.88.0.2")
	p8080 := Port{Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 80}
	existing := map[string][]Port{"other": {p8080}, "self": {{Protocol: corev1.ProtocolUDP, HostPort: 53, ContainerPort: 53}}}
	for _, c := range []struct {
		name    string
		uid     string
		ip      netip.Addr
		ports   []Port
		wantErr string
	}{
		{"free port", "self", pod, []Port{{Protocol: corev1.ProtocolTCP, HostPort: 8081, ContainerPort: 80}}, ""},
		{"own port again", "self", pod, []Port{{Protocol: corev1.ProtocolUDP, HostPort: 53, ContainerPort: 53}}, ""},
		{"no ports", "self", pod, nil, ""},
		{"taken", "self", pod, []Port{p8080}, "pod self: hostPort TCP *:8080->80 conflicts with TCP *:8080->80 of pod other: " + NodePortsReason},
		{"listed twice", "self", pod, []Port{p8080, p8080}, "listed twice"},
		{"empty uid", "", pod, nil, "empty pod UID"},
		{"uid with space", "a b", pod, nil, "without spaces"},
		{"no pod IP", "self", netip.Addr{}, nil, "invalid pod IP"},
		{"family mismatch", "self", pod, []Port{{Protocol: corev1.ProtocolTCP, HostPort: 1, ContainerPort: 1, HostIP: netip.MustParseAddr("2001:db8::1")}}, "different families"},
		{"SCTP", "self", pod, []Port{{Protocol: corev1.ProtocolSCTP, HostPort: 1, ContainerPort: 1}}, "pod self: hostPort 1: protocol SCTP is unsupported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkAdd(c.uid, c.ip, c.ports, existing)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
	var ce *ConflictError
	if err := checkAdd("self", pod, []Port{p8080}, existing); !errors.As(err, &ce) || ce.OtherPod != "other" {
		t.Errorf("conflict: got %v, want a *ConflictError with other", err)
	}
}

func TestCommentRoundTrip(t *testing.T) {
	for _, p := range []Port{
		{Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 80},
		{Protocol: corev1.ProtocolUDP, HostPort: 53, ContainerPort: 5353, HostIP: netip.MustParseAddr("192.0.2.1")},
		{Protocol: corev1.ProtocolTCP, HostPort: 443, ContainerPort: 8443, HostIP: netip.MustParseAddr("2001:db8::1")},
	} {
		c := portComment("uid-1", p)
		if len(c) > 128 {
			t.Errorf("comment %q longer than nft's 128 bytes", c)
		}
		uid, got, isPort, err := parseComment(c)
		if err != nil || uid != "uid-1" || !isPort {
			t.Fatalf("parse %q: %q %v %v", c, uid, isPort, err)
		}
		if d := cmp.Diff(p, got, addrCmp); d != "" {
			t.Errorf("%q (-want +got):\n%s", c, d)
		}
	}
	if uid, _, isPort, err := parseComment(masqComment("uid-1", "hairpin")); err != nil || uid != "uid-1" || isPort {
		t.Errorf("masq comment: %q %v %v", uid, isPort, err)
	}
	for _, bad := range []string{"", "hello", "pod=x port=TCP/*/8080", "pod=x port=TCP/nowhere/1/1", "pod=x port=SCTP/*/1/1", "pod=x other=1", "pod=x port=TCP/*/99999/1"} {
		if _, _, _, err := parseComment(bad); err == nil {
			t.Errorf("parse %q: no error", bad)
		}
	}
}

func TestPodRules(t *testing.T) {
	ports := []Port{
		{Protocol: corev1.ProtocolTCP, HostPort: 8080, ContainerPort: 80},
		{Protocol: corev1.ProtocolUDP, HostPort: 8080, ContainerPort: 80, HostIP: netip.MustParseAddr("192.0.2.1")},
	}
	type sum struct{ Chain, Comment string }
	summarize := func(rs []podRule) []sum {
		var out []sum
		for _, r := range rs {
			out = append(out, sum{r.chain, r.comment})
		}
		return out
	}
	for _, c := range []struct {
		name  string
		ip    string
		ports []Port
		want  []sum
	}{
		{"IPv4", "10.88.0.2", ports, []sum{
			{chainHostPorts, "pod=u port=TCP/*/8080/80"},
			{chainHostIPPorts, "pod=u port=UDP/192.0.2.1/8080/80"},
			{chainMasquerade, "pod=u masq=hairpin"},
			{chainMasquerade, "pod=u masq=localhost"},
		}},
		{"IPv6 has no localhost masquerade", "fd00::2", ports[:1], []sum{
			{chainHostPorts, "pod=u port=TCP/*/8080/80"},
			{chainMasquerade, "pod=u masq=hairpin"},
		}},
		{"no ports, no rules", "10.88.0.2", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, summarize(podRules("u", netip.MustParseAddr(c.ip), c.ports))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPrefixMask(t *testing.T) {
	for _, c := range []struct {
		pfx  string
		want []byte
	}{
		{"10.88.0.0/16", []byte{255, 255, 0, 0}},
		{"224.0.0.0/4", []byte{0xf0, 0, 0, 0}},
		{"10.0.0.0/9", []byte{255, 0x80, 0, 0}},
	} {
		if d := cmp.Diff(c.want, prefixMask(netip.MustParsePrefix(c.pfx))); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.pfx, d)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{NetNS: -1},
		{PodSubnets: []netip.Prefix{{}}},
		{Bridge: "../x"},
		{Bridge: "averyveryverylongname"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	m, err := New(Options{PodSubnets: []netip.Prefix{netip.MustParsePrefix("10.88.0.5/16")}})
	if err != nil || m.opts.PodSubnets[0] != netip.MustParsePrefix("10.88.0.0/16") {
		t.Errorf("New: %v, subnets %v, want the masked 10.88.0.0/16", err, m.opts.PodSubnets)
	}
}

func TestRetryTransient(t *testing.T) {
	for _, c := range []struct {
		name      string
		errs      []error
		wantCalls int
		wantErr   bool
	}{
		{"ok at once", []error{nil}, 1, false},
		{"EINTR then ok", []error{fmt.Errorf("receive: %w", unix.EINTR), nil}, 2, false},
		{"dump interrupted then ok", []error{errors.New("netlink receive: dump interrupted"), nil}, 2, false},
		{"permanent", []error{unix.EPERM}, 1, true},
		{"always EINTR gives up", []error{unix.EINTR, unix.EINTR, unix.EINTR, unix.EINTR, unix.EINTR, unix.EINTR}, 5, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := retry(func() error { calls++; return c.errs[calls-1] })
			if calls != c.wantCalls || (err != nil) != c.wantErr {
				t.Errorf("calls %d, err %v; want %d calls, error %v", calls, err, c.wantCalls, c.wantErr)
			}
		})
	}
}
