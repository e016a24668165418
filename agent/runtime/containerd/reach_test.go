package containerd

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// silentListener accepts connections and never writes to them: a host
// behind a broken uplink or a captive middlebox.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// closingListener accepts connections and closes them at once.
func closingListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// shortTransport is registryTransport with timeouts short enough for a test.
func shortTransport() *http.Transport {
	t := registryTransport()
	t.TLSHandshakeTimeout = 200 * time.Millisecond
	t.ResponseHeaderTimeout = 200 * time.Millisecond
	return t
}

// requestErr is the error of a real HEAD request to url.
func requestErr(t *testing.T, rt http.RoundTripper, url string) error {
	t.Helper()
	resp, err := (&http.Client{Transport: rt}).Head(url)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("HEAD %s: answered %s, want an error", url, resp.Status)
	}
	return err
}

func TestUnreachable(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	tests := []struct {
		name string
		err  func(t *testing.T) error
		want bool
	}{
		{"connection refused", func(t *testing.T) error {
			return requestErr(t, shortTransport(), "http://"+refusedAddr(t)+"/v2/")
		}, true},
		{"name does not resolve", func(t *testing.T) error {
			return &url.Error{Op: "Head", URL: "https://registry-1.docker.io/v2/", Err: &net.OpError{Op: "dial", Net: "tcp",
				Err: &net.DNSError{Err: "no such host", Name: "registry-1.docker.io", IsNotFound: true}}}
		}, true},
		{"no DNS server answers", func(t *testing.T) error {
			return &url.Error{Op: "Head", URL: "https://registry-1.docker.io/v2/", Err: &net.OpError{Op: "dial", Net: "tcp",
				Err: &net.DNSError{Err: "read udp 10.0.2.15:40000->10.0.2.3:53: i/o timeout", Name: "registry-1.docker.io", IsTimeout: true}}}
		}, true},
		{"network unreachable", func(t *testing.T) error {
			return &url.Error{Op: "Head", URL: "https://registry-1.docker.io/v2/", Err: &net.OpError{Op: "dial", Net: "tcp",
				Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}}
		}, true},
		{"dial timeout", func(t *testing.T) error {
			return &url.Error{Op: "Head", URL: "https://registry-1.docker.io/v2/", Err: &net.OpError{Op: "dial", Net: "tcp",
				Err: os.ErrDeadlineExceeded}}
		}, true},
		{"proxy not reachable", func(t *testing.T) error {
			return &url.Error{Op: "Head", URL: "https://registry-1.docker.io/v2/", Err: &net.OpError{Op: "proxyconnect", Net: "tcp",
				Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}}
		}, true},
		{"TLS handshake timeout", func(t *testing.T) error {
			return requestErr(t, shortTransport(), "https://"+silentListener(t)+"/v2/")
		}, true},
		{"no response headers in time", func(t *testing.T) error {
			return requestErr(t, shortTransport(), "http://"+silentListener(t)+"/v2/")
		}, true},
		{"certificate not trusted", func(t *testing.T) error {
			// The real timeouts: a handshake can take longer than the
			// short ones (under the race detector).
			return requestErr(t, registryTransport(), tlsSrv.URL+"/v2/")
		}, false},
		{"connection closed by the server", func(t *testing.T) error {
			return requestErr(t, shortTransport(), "http://"+closingListener(t)+"/v2/")
		}, false},
		{"cancelled", func(t *testing.T) error {
			return fmt.Errorf("pull: %w", context.Canceled)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			if got := unreachable(err); got != tt.want {
				t.Errorf("unreachable(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

// countingTransport counts the requests that reach the network.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int // host -> requests
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[req.URL.Host]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

// TestPullWatch: a pull counts as unreachable only when no host answered
// at all, and an unreachable host is not asked again in the same pull.
func TestPullWatch(t *testing.T) {
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer unauthorized.Close()
	refused := "http://" + refusedAddr(t)
	silent := "https://" + silentListener(t)
	tests := []struct {
		name     string
		urls     []string // requested in order, as the resolver tries hosts
		cancel   bool
		want     bool
		wantSent int // requests that reached the network
	}{
		{name: "refused, asked twice", urls: []string{refused, refused}, want: true, wantSent: 1},
		{name: "TLS handshake timeout, asked twice", urls: []string{silent, silent}, want: true, wantSent: 1},
		{name: "mirror refused, registry answered not found", urls: []string{refused, notFound.URL}, want: false, wantSent: 2},
		{name: "mirror answered not found, registry refused", urls: []string{notFound.URL, refused}, want: false, wantSent: 2},
		{name: "registry answered unauthorized", urls: []string{unauthorized.URL}, want: false, wantSent: 1},
		{name: "pull cancelled", urls: []string{refused}, cancel: true, want: false, wantSent: 1},
		{name: "no request", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counter := &countingTransport{next: shortTransport()}
			watch := &pullWatch{next: counter}
			client := &http.Client{Transport: watch}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			for _, u := range tt.urls {
				req, err := http.NewRequestWithContext(ctx, http.MethodHead, u+"/v2/library/busybox/manifests/latest", nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			if got := watch.noRegistryAnswered(); got != tt.want {
				t.Errorf("noRegistryAnswered() = %v, want %v", got, tt.want)
			}
			sent := 0
			for _, n := range counter.n {
				sent += n
			}
			if sent != tt.wantSent {
				t.Errorf("%d requests reached the network, want %d", sent, tt.wantSent)
			}
		})
	}
}
