package podagent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/agent/apiauth"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string
	}{
		{addr: "127.0.0.1:8080"},
		{addr: "127.0.0.2:8080"},
		{addr: "[::1]:8080"},
		{addr: "localhost:8080"},
		{addr: ":8080", wantErr: "not a loopback address"},
		{addr: "0.0.0.0:8080", wantErr: "not a loopback address"},
		{addr: "10.0.2.15:8080", wantErr: "not a loopback address"},
		{addr: "[::]:8080", wantErr: "not a loopback address"},
		{addr: "board:8080", wantErr: "not a loopback address"},
		{addr: "127.0.0.1", wantErr: "missing port"},
	}
	for _, tt := range tests {
		err := checkLoopback(tt.addr)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("checkLoopback(%q) = %v, want error containing %q", tt.addr, err, tt.wantErr)
		}
	}
}

// syncBuffer is a log sink safe for the serving goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A listener that fails is logged once with its cause and hint, retried,
// and served once it opens; the agent is never stopped by it.
func TestListenerRetries(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	attempts := 0
	real, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener{
		name:  "vsock",
		srv:   &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })},
		hint:  vsockHint,
		retry: time.Millisecond,
		listen: func() (net.Listener, error) {
			attempts++
			if attempts < 4 {
				return nil, &net.OpError{Op: "listen", Net: "vsock", Err: errors.New("address family not supported by protocol")}
			}
			return real, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		l.serve(ctx, log)
		close(done)
	}()
	var resp *http.Response
	for range 500 {
		if resp, err = http.Get("http://" + real.Addr().String()); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listener never served: %v\n%s", err, logs.String())
	}
	resp.Body.Close()
	cancel()
	l.srv.Shutdown(context.Background())
	<-done
	out := logs.String()
	if n := strings.Count(out, "API listener failed"); n != 1 {
		t.Errorf("the same failure was logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "serving API") || !strings.Contains(out, "address family not supported") {
		t.Errorf("log lacks the cause or the success:\n%s", out)
	}
}

func TestVsockHint(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("socket", unix.EAFNOSUPPORT)}, "load the vsock module"},
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("bind", unix.EADDRINUSE)}, "api.vsockPort"},
		{errors.New("other"), ""},
	} {
		if got := vsockHint(tt.err); !strings.Contains(got, tt.want) || (tt.want == "" && got != "") {
			t.Errorf("vsockHint(%v) = %q, want it to contain %q", tt.err, got, tt.want)
		}
	}
}

func TestCertKeeper(t *testing.T) {
	flash := t.TempDir()
	hosts := []string{"localhost", "board"}
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	var logs syncBuffer
	k, err := newCertKeeper(flash, func() ([]string, []net.IP) { return hosts, ips }, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	onFlash, err := apiauth.LoadFlash(flash)
	if err != nil {
		t.Fatalf("first boot did not write the credentials: %v", err)
	}
	if k.token() != onFlash.Token {
		t.Error("keeper's token is not the flash's")
	}
	first, _ := k.getCertificate(&tls.ClientHelloInfo{})

	// Nothing new: the same certificate.
	if err := k.refresh(); err != nil {
		t.Fatal(err)
	}
	if same, _ := k.getCertificate(nil); same != first {
		t.Error("refresh without a new address replaced the certificate")
	}

	// DHCP gave an address: a new certificate that carries it, same token.
	ips = append(ips, net.ParseIP("192.168.1.20"))
	if err := k.refresh(); err != nil {
		t.Fatal(err)
	}
	cert, _ := k.getCertificate(nil)
	if cert == first {
		t.Fatal("certificate not replaced for a new address")
	}
	if err := cert.Leaf.VerifyHostname("192.168.1.20"); err != nil {
		t.Errorf("new certificate: %v", err)
	}
	if k.token() != onFlash.Token {
		t.Error("token changed on reissue")
	}
	if !strings.Contains(logs.String(), "wrote API credentials") {
		t.Errorf("reissue not logged:\n%s", logs.String())
	}
}

// A flash that cannot be written keeps serving: what Ensure repaired or
// issued in memory, logged once, not retried every check for the same
// addresses.
func TestCertKeeperReadOnlyFlash(t *testing.T) {
	creds, err := apiauth.Generate([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	calls := 0
	k := &certKeeper{
		flash: t.TempDir(),
		sans:  func() ([]string, []net.IP) { return []string{"localhost", "elsewhere"}, nil },
		log:   slog.New(slog.NewTextHandler(&logs, nil)),
		ensure: func(string, []string, []net.IP) (*apiauth.Credentials, apiauth.Report, error) {
			calls++
			return creds, apiauth.Report{Reissued: true}, errors.New("write api/tls.crt: read-only file system")
		},
	}
	if err := k.refresh(); err != nil {
		t.Fatalf("refresh with a read-only flash: %v", err)
	}
	if k.token() != creds.Token {
		t.Error("not serving the credentials made in memory")
	}
	if err := k.refresh(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "read-only file system"); n != 1 || calls != 1 {
		t.Errorf("ensure called %d times, the failure logged %d times; want once each:\n%s", calls, n, logs.String())
	}
	if strings.Contains(logs.String(), "wrote API credentials") {
		t.Errorf("a write that failed is logged as written:\n%s", logs.String())
	}
	// Nothing usable at all: HTTPS cannot start.
	k.creds = nil
	k.ensure = func(string, []string, []net.IP) (*apiauth.Credentials, apiauth.Report, error) {
		return nil, apiauth.Report{}, errors.New("read-only file system")
	}
	if err := k.refresh(); err == nil {
		t.Error("no credentials and a read-only flash: no error")
	}
}

func TestDialableIPs(t *testing.T) {
	eth := func(ip string) hostAddr { return hostAddr{link: "eth0", linkType: "device", ip: net.ParseIP(ip)} }
	with := func(a hostAddr, f func(*hostAddr)) hostAddr { f(&a); return a }
	addrs := []hostAddr{
		{link: "lo", linkType: "device", loopback: true, ip: net.ParseIP("127.0.0.1"), scope: unix.RT_SCOPE_HOST},
		eth("10.0.2.15"),
		eth("192.168.1.20"),
		eth("2001:db8::5054:ff:fe12:3456"), // SLAAC, stable
		eth("fd00:1::2"),                   // ULA
		with(eth("2001:db8::a1b2:c3d4"), func(a *hostAddr) { a.flags = unix.IFA_F_TEMPORARY }),
		with(eth("2001:db8::dead"), func(a *hostAddr) { a.flags = unix.IFA_F_DEPRECATED }),
		with(eth("2001:db8::beef"), func(a *hostAddr) { a.flags = unix.IFA_F_TENTATIVE }),
		with(eth("2001:db8::f00"), func(a *hostAddr) { a.flags = unix.IFA_F_DADFAILED }),
		with(eth("fe80::5054:ff:fe12:3456"), func(a *hostAddr) { a.scope = unix.RT_SCOPE_LINK }),
		with(eth("fec0::5054:ff:fe12:3456"), func(a *hostAddr) { a.scope = unix.RT_SCOPE_SITE }), // QEMU's user network
		with(eth("169.254.7.7"), func(a *hostAddr) {}),                                           // zeroconf, scope left global
		{link: "cni0", linkType: "bridge", ip: net.ParseIP("10.88.0.1")},
		{link: "cni0", linkType: "bridge", ip: net.ParseIP("fe80::1"), scope: unix.RT_SCOPE_LINK},
		{link: "veth1234", linkType: "veth", ip: net.ParseIP("fe80::2"), scope: unix.RT_SCOPE_LINK},
		{link: "wlan0", linkType: "device", ip: net.ParseIP("192.168.4.9")},
		{link: "br0", linkType: "bridge", defaultRoute: true, ip: net.ParseIP("192.168.5.5")}, // device.yaml's interface: br0
	}
	var got []string
	for _, ip := range dialableIPs(addrs) {
		got = append(got, ip.String())
	}
	want := []string{"10.0.2.15", "192.168.1.20", "2001:db8::5054:ff:fe12:3456", "fd00:1::2", "192.168.4.9", "192.168.5.5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dialableIPs (-want +got):\n%s", diff)
	}
}

// The pods' bridge, link-local and temporary IPv6 addresses appearing
// after start (on the QEMU board about 30 s in) do not rewrite the
// certificate; a second start with the same addresses writes nothing;
// only a new address on the host link does, once.
func TestCertKeeperWritesOnlyForNewHostAddresses(t *testing.T) {
	flash := t.TempDir()
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	boot := []hostAddr{
		{link: "lo", linkType: "device", loopback: true, ip: net.ParseIP("127.0.0.1"), scope: unix.RT_SCOPE_HOST},
		{link: "eth0", linkType: "device", ip: net.ParseIP("10.0.2.15")},
	}
	later := append(slices.Clone(boot),
		hostAddr{link: "cni0", linkType: "bridge", ip: net.ParseIP("10.88.0.1")},
		hostAddr{link: "cni0", linkType: "bridge", ip: net.ParseIP("fe80::b8e1:1ff:fe2c:5a3e"), scope: unix.RT_SCOPE_LINK},
		hostAddr{link: "veth3f1a", linkType: "veth", ip: net.ParseIP("fe80::4c3b:2ff:fe11:9a0c"), scope: unix.RT_SCOPE_LINK},
		hostAddr{link: "eth0", linkType: "device", ip: net.ParseIP("fe80::5054:ff:fe12:3456"), scope: unix.RT_SCOPE_LINK},
		hostAddr{link: "eth0", linkType: "device", ip: net.ParseIP("fec0::5054:ff:fe12:3456"), scope: unix.RT_SCOPE_SITE},
		hostAddr{link: "eth0", linkType: "device", ip: net.ParseIP("2001:db8::9c1e:77ff:fe0a:1"), flags: unix.IFA_F_TEMPORARY},
	)
	current := boot
	sans := func() ([]string, []net.IP) {
		return boardSANs("board", func() ([]hostAddr, error) { return current, nil })
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	k, err := newCertKeeper(flash, sans, log)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := k.getCertificate(nil)
	for _, name := range []string{"localhost", "board", hostname, "127.0.0.1", "::1", "10.0.2.15"} {
		if err := first.Leaf.VerifyHostname(name); err != nil {
			t.Errorf("first start's certificate: %v", err)
		}
	}

	before := snapshotDir(t, flash)
	current = later
	if err := k.refresh(); err != nil {
		t.Fatal(err)
	}
	if got, _ := k.getCertificate(nil); got != first {
		t.Error("the pods' bridge or a link-local, site-local or temporary address replaced the certificate")
	}
	// The next boot: the same addresses, from the start.
	k2, err := newCertKeeper(flash, sans, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := k2.refresh(); err != nil {
		t.Fatal(err)
	}
	if after := snapshotDir(t, flash); after != before {
		t.Errorf("the flash was written with no new host address:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := strings.Count(logs.String(), "wrote API credentials"); n != 1 {
		t.Errorf("credentials written %d times, want once (the first start):\n%s", n, logs.String())
	}

	// A new DHCP lease on the host link is a new address: one new
	// certificate, with the old address kept.
	current = append(slices.Clone(later), hostAddr{link: "eth0", linkType: "device", ip: net.ParseIP("192.168.1.20")})
	if err := k2.refresh(); err != nil {
		t.Fatal(err)
	}
	cert, _ := k2.getCertificate(nil)
	for _, name := range []string{"192.168.1.20", "10.0.2.15"} {
		if err := cert.Leaf.VerifyHostname(name); err != nil {
			t.Errorf("after a new lease: %v", err)
		}
	}
	if err := cert.Leaf.VerifyHostname("10.88.0.1"); err == nil {
		t.Error("the certificate names the pods' bridge")
	}
	if n := strings.Count(logs.String(), "wrote API credentials"); n != 2 {
		t.Errorf("credentials written %d times, want twice (first start, new lease):\n%s", n, logs.String())
	}
}

// snapshotDir lists every entry under dir with what a write would
// change: inode (a rename), size, modification and change times.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v ino=%d size=%d mtime=%d.%09d ctime=%d.%09d\n", rel, fi.Mode(), st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The netlink adapter, on this machine: the loopback is found as such.
func TestListHostAddrs(t *testing.T) {
	addrs, err := listHostAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var lo []string
	for _, a := range addrs {
		if a.link == "" || a.ip == nil {
			t.Errorf("address without a link or IP: %+v", a)
		}
		if a.loopback {
			lo = append(lo, a.ip.String())
		}
	}
	if !slices.Contains(lo, "127.0.0.1") {
		t.Errorf("loopback addresses %v, want 127.0.0.1 among them (all: %+v)", lo, addrs)
	}
	dialable := dialableIPs(addrs)
	for _, ip := range dialable {
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			t.Errorf("dialable address %s", ip)
		}
	}
	t.Logf("dialable: %v", dialable)
}
