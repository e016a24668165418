package podagent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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

// A flash that cannot be written keeps serving the certificate it has.
func TestCertKeeperReadOnlyFlash(t *testing.T) {
	flash := t.TempDir()
	creds, err := apiauth.Generate([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := creds.WriteFlash(flash); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	k := &certKeeper{
		flash: flash,
		sans:  func() ([]string, []net.IP) { return []string{"localhost", "elsewhere"}, nil },
		log:   slog.New(slog.NewTextHandler(&logs, nil)),
		ensure: func(string, []string, []net.IP) (*apiauth.Credentials, bool, error) {
			return nil, false, errors.New("write api/tls.crt: read-only file system")
		},
	}
	if err := k.refresh(); err != nil {
		t.Fatalf("refresh with a read-only flash: %v", err)
	}
	if k.token() != creds.Token {
		t.Error("not serving the flash's credentials")
	}
	if err := k.refresh(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "read-only file system"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, logs.String())
	}
	// Nothing on the flash at all: HTTPS cannot start.
	k.flash = t.TempDir()
	k.creds = nil
	if err := k.refresh(); err == nil {
		t.Error("no credentials and a read-only flash: no error")
	}
}
