package podagent

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/internal/device"
)

// How often a listener that could not be opened is tried again (the vsock
// module may load later, a port may be freed), and how often the server
// certificate is checked against the board's addresses (DHCP).
const (
	listenRetry  = 5 * time.Second
	sanCheck     = 30 * time.Second
	shutdownWait = 2 * time.Second
)

// listener is one way the API is served.
type listener struct {
	name   string // "http", "https", "vsock": for logs
	listen func() (net.Listener, error)
	srv    *http.Server
	tls    bool // srv.TLSConfig has the certificate
	// hint explains a listen error to the person reading the log.
	hint func(error) string
	// retry is the wait between attempts to open it (listenRetry).
	retry time.Duration
}

// checkLoopback refuses a plain-HTTP --listen address that is reachable
// from the network: that listener has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: not a loopback address: this listener is plain HTTP without authentication; use 127.0.0.1 or [::1], and device.yaml's api.listen (with --device-listeners) for HTTPS with a token", addr)
	}
	return nil
}

// serve opens l and serves it until ctx ends. A listener that cannot be
// opened is logged with its cause once and tried again every listenRetry;
// it never stops the agent.
func (l listener) serve(ctx context.Context, log *slog.Logger) {
	var lastErr string
	for {
		ln, err := l.listen()
		if err == nil {
			log.Info("serving API", "listener", l.name, "address", ln.Addr().String())
			lastErr = ""
			if l.tls {
				err = l.srv.ServeTLS(ln, "", "")
			} else {
				err = l.srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) || ctx.Err() != nil {
				return
			}
		}
		msg := err.Error()
		if l.hint != nil {
			if h := l.hint(err); h != "" {
				msg += " (" + h + ")"
			}
		}
		if msg != lastErr {
			log.Error("API listener failed; the agent keeps running and retries", "listener", l.name, "err", msg, "retry", cmp.Or(l.retry, listenRetry))
			lastErr = msg
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(cmp.Or(l.retry, listenRetry)):
		}
	}
}

// vsockHint explains the errors a guest without vsock support gives.
func vsockHint(err error) string {
	switch {
	case errors.Is(err, unix.EAFNOSUPPORT):
		return "the kernel has no AF_VSOCK: load the vsock module and a transport (vmw_vsock_virtio_transport, or vsock_loopback for tests)"
	case errors.Is(err, unix.EADDRINUSE):
		return "the vsock port is taken: set api.vsockPort in device.yaml, or -1 to turn vsock off"
	}
	return ""
}

func tcpHint(err error) string {
	if errors.Is(err, unix.EADDRINUSE) {
		return "the port is taken: set api.listen in device.yaml, or \"off\""
	}
	return ""
}

// listenVsock listens on port for any context ID: the hypervisor host
// (CID 2) and, through vsock_loopback, the guest itself (CID 1). Binding
// the guest's own CID, as vsock.Listen does, would refuse loopback.
func listenVsock(port uint32) (net.Listener, error) {
	return vsock.ListenContextID(unix.VMADDR_CID_ANY, port, nil)
}

// certKeeper serves the flash's server certificate and issues a new one
// (same CA and token) when the board gains a name or address it lacks.
type certKeeper struct {
	flash string
	sans  func() ([]string, []net.IP)
	log   *slog.Logger
	// ensure is apiauth.EnsureFlash; tests make it fail.
	ensure func(dir string, hosts []string, ips []net.IP) (*apiauth.Credentials, bool, error)

	mu    sync.Mutex
	creds *apiauth.Credentials
	cert  *tls.Certificate
}

// newCertKeeper loads the credentials, generating them on a first boot.
func newCertKeeper(flash string, sans func() ([]string, []net.IP), log *slog.Logger) (*certKeeper, error) {
	k := &certKeeper{flash: flash, sans: sans, log: log, ensure: apiauth.EnsureFlash}
	if err := k.refresh(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *certKeeper) refresh() error {
	hosts, ips := k.sans()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.creds != nil && k.creds.Covers(hosts, ips) {
		return nil
	}
	creds, changed, err := k.ensure(k.flash, hosts, ips)
	if err != nil {
		// A flash that cannot be written (mounted read-only after a bad
		// fsck) must not take HTTPS down: serve what is there.
		loaded, lerr := apiauth.LoadFlash(k.flash)
		if lerr != nil {
			return err
		}
		if k.creds != nil && string(loaded.Cert) == string(k.creds.Cert) {
			return nil // already serving it; the error was logged before
		}
		k.log.Warn("could not issue an API server certificate for the board's names; serving the one on the flash", "err", err)
		creds, changed = loaded, false
	}
	if k.creds != nil && creds.Token != k.creds.Token {
		// The API checks the token read at start; a new one needs a restart.
		k.log.Warn("API token on the flash changed; restart podagent to use it")
		creds.Token = k.creds.Token
	}
	pair, err := tls.X509KeyPair(creds.Cert, creds.Key)
	if err != nil {
		return fmt.Errorf("load API server certificate: %w", err)
	}
	if changed {
		k.log.Info("wrote API credentials", "dir", k.flash+"/"+apiauth.Dir, "names", hosts, "addresses", ips)
	}
	k.creds, k.cert = creds, &pair
	return nil
}

func (k *certKeeper) token() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.creds.Token
}

func (k *certKeeper) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cert, nil
}

func (k *certKeeper) run(ctx context.Context) {
	t := time.NewTicker(sanCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.refresh(); err != nil {
				k.log.Error("refresh API server certificate", "err", err)
			}
		}
	}
}

// boardSANs are the names and addresses the server certificate must carry:
// localhost, the node name and hostname, loopback, and every global
// unicast address of the board.
func boardSANs(nodeName string) ([]string, []net.IP) {
	hosts := []string{"localhost", nodeName}
	if h, err := os.Hostname(); err == nil && h != nodeName {
		hosts = append(hosts, h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsGlobalUnicast() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	return hosts, ips
}

// deviceListeners builds the listeners device.yaml's api section asks for,
// and the certificate keeper HTTPS needs (nil without HTTPS). HTTPS needs
// the flash credentials; if they cannot be had, HTTPS is left off with the
// cause logged, and the rest runs.
func deviceListeners(cfg Config, dev device.API, handler http.Handler, log *slog.Logger) ([]listener, *certKeeper) {
	var (
		out    []listener
		keeper *certKeeper
	)
	if addr := dev.Listen; addr != "off" {
		k, err := newCertKeeper(cfg.FlashDir, func() ([]string, []net.IP) { return boardSANs(cfg.NodeName) }, log)
		if err != nil {
			log.Error("HTTPS API listener off: no usable credentials", "address", addr, "err", err)
		} else {
			keeper = k
			srv := &http.Server{
				Handler:           api.Authenticate(handler, k.token()),
				ReadHeaderTimeout: 10 * time.Second,
				TLSConfig: &tls.Config{
					GetCertificate: k.getCertificate,
					MinVersion:     tls.VersionTLS12,
				},
				// Handshake errors from port scanners are not news.
				ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			}
			out = append(out, listener{name: "https", srv: srv, tls: true, hint: tcpHint,
				listen: func() (net.Listener, error) { return net.Listen("tcp", addr) }})
		}
	}
	if port := dev.VsockPort; port >= 0 {
		// No authentication: the hypervisor host owns the guest anyway,
		// and only it (or the guest itself) can reach AF_VSOCK.
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		out = append(out, listener{name: "vsock", srv: srv, hint: vsockHint,
			listen: func() (net.Listener, error) { return listenVsock(uint32(port)) }})
	}
	return out, keeper
}
