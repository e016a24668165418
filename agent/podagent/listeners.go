package podagent

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mdlayher/vsock"
	"github.com/vishvananda/netlink"
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
// (same CA, key and token) when the board gains a name or address kubectl
// would dial that the certificate lacks. At start it repairs a torn or
// corrupt set (apiauth.Ensure).
type certKeeper struct {
	flash string
	sans  func() ([]string, []net.IP)
	log   *slog.Logger
	// ensure is apiauth.Ensure; tests make it fail.
	ensure func(dir string, hosts []string, ips []net.IP) (*apiauth.Credentials, apiauth.Report, error)

	mu    sync.Mutex
	creds *apiauth.Credentials
	cert  *tls.Certificate
	// tried is what ensure was last asked to cover: when it could not (no
	// CA key, a flash that cannot be written), the same names are not
	// tried again every check, only new ones.
	tried string
}

// newCertKeeper loads the credentials, repairing them or generating them
// on a first boot.
func newCertKeeper(flash string, sans func() ([]string, []net.IP), log *slog.Logger) (*certKeeper, error) {
	k := &certKeeper{flash: flash, sans: sans, log: log, ensure: apiauth.Ensure}
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
	want := fmt.Sprint(hosts, ips)
	if k.creds != nil && want == k.tried {
		return nil
	}
	k.tried = want
	creds, report, err := k.ensure(k.flash, hosts, ips)
	k.logReport(report, err == nil, hosts, ips)
	if err != nil {
		if creds == nil {
			return err
		}
		// A flash that cannot be written (mounted read-only after a bad
		// fsck) must not take HTTPS down: serve the repair from memory.
		k.log.Warn("could not write the API credentials to the flash; serving them from memory until the next start", "why", report.Why, "err", err)
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
	k.creds, k.cert = creds, &pair
	return nil
}

// logReport says what Ensure did, at the level a person should see it;
// what it made but could not write is the caller's to log.
func (k *certKeeper) logReport(r apiauth.Report, written bool, hosts []string, ips []net.IP) {
	dir := filepath.Join(k.flash, apiauth.Dir)
	if len(r.Removed) > 0 {
		k.log.Info("removed leftovers of an interrupted API credentials write", "paths", r.Removed)
	}
	for _, w := range r.Warnings {
		k.log.Warn("API credentials need a person", "problem", w, "dir", dir)
	}
	if !written {
		return
	}
	switch {
	case r.Generated:
		k.log.Info("wrote API credentials: a new CA, token, key and certificate (first start); make kubeconfigs from the flash's ca.crt and token", "dir", dir, "names", hosts, "addresses", ips)
		return
	case r.NewToken:
		k.log.Warn("API token was lost and a new one written: kubeconfigs with the old token are refused until they get the new one", "file", filepath.Join(dir, apiauth.TokenFile), "why", r.Why)
	}
	if r.Reissued {
		k.log.Info("wrote API credentials: a new server certificate from the same CA", "dir", dir, "why", r.Why, "names", hosts, "addresses", ips)
	}
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

// clientCAs is the pool client certificates are verified against: the
// flash's CA, which never changes while podagent runs.
func (k *certKeeper) clientCAs() (*x509.CertPool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.creds.CertPool()
}

// SignClient signs a client certificate with the flash's CA
// (api.ClientSigner, for podctl kubeconfig).
func (k *certKeeper) SignClient(csrPEM []byte, validity time.Duration, now time.Time) ([]byte, error) {
	k.mu.Lock()
	creds := k.creds
	k.mu.Unlock()
	return creds.SignClient(csrPEM, validity, now)
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

// hostAddr is one of the board's addresses, as netlink reports it.
type hostAddr struct {
	link     string // interface name
	linkType string // netlink's kind: "device" for a NIC; "bridge", "veth", ...
	loopback bool
	// defaultRoute: the link carries a default route, as the host link
	// does when device.yaml names a bridge, bond or VLAN for it.
	defaultRoute bool
	ip           net.IP
	scope        int // RT_SCOPE_*
	flags        int // IFA_F_*
}

// listHostAddrs lists every address of every link.
func listHostAddrs() ([]hostAddr, error) {
	var (
		links  []netlink.Link
		addrs  []netlink.Addr
		routes []netlink.Route
		err    error
	)
	// A dump the kernel interrupts (a link or address changed meanwhile)
	// is incomplete: take it again, a bounded number of times.
	for range 3 {
		if links, err = netlink.LinkList(); err == nil {
			if addrs, err = netlink.AddrList(nil, netlink.FAMILY_ALL); err == nil {
				routes, err = netlink.RouteList(nil, netlink.FAMILY_ALL)
			}
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list the board's addresses: %w", err)
	}
	byIndex := map[int]netlink.Link{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l
	}
	withDefault := map[int]bool{}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
			withDefault[r.LinkIndex] = true
		}
	}
	var out []hostAddr
	for _, a := range addrs {
		l, ok := byIndex[a.LinkIndex]
		if !ok || a.IPNet == nil {
			continue
		}
		out = append(out, hostAddr{link: l.Attrs().Name, linkType: l.Type(), loopback: l.Attrs().Flags&net.FlagLoopback != 0,
			defaultRoute: withDefault[a.LinkIndex], ip: a.IP, scope: a.Scope, flags: a.Flags})
	}
	return out, nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// dialableIPs are the addresses kubectl would dial: the stable, global
// addresses of the host link (a NIC: netlink's "device" kind, as
// netsetup/hostnet picks it; or any link with a default route, for a
// bridge, bond or VLAN named in device.yaml). Not the pods' bridge (cni0)
// or veths, whose
// addresses appear when the first pod starts; not link-local or
// site-local (QEMU's fec0::/64) addresses; not IPv6 temporary (privacy)
// addresses, which change every day, nor deprecated, tentative or
// duplicate ones. Each of those would rewrite the certificate on the
// flash for an address no kubeconfig names.
func dialableIPs(addrs []hostAddr) []net.IP {
	const unusable = unix.IFA_F_TEMPORARY | unix.IFA_F_DEPRECATED | unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED
	var out []net.IP
	for _, a := range addrs {
		if a.loopback || a.linkType != "device" && !a.defaultRoute || a.scope != unix.RT_SCOPE_UNIVERSE ||
			!a.ip.IsGlobalUnicast() || a.flags&unusable != 0 {
			continue
		}
		out = append(out, a.ip)
	}
	return out
}

// boardSANs are the names and addresses the server certificate must carry:
// localhost, the node name and hostname, loopback, and the host link's
// addresses (dialableIPs). When the addresses cannot be listed, the
// certificate keeps what it has until the next check.
func boardSANs(nodeName string, list func() ([]hostAddr, error)) ([]string, []net.IP) {
	hosts := []string{"localhost", nodeName}
	if h, err := os.Hostname(); err == nil && h != nodeName {
		hosts = append(hosts, h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	if addrs, err := list(); err == nil {
		ips = append(ips, dialableIPs(addrs)...)
	}
	return hosts, ips
}

// deviceListeners builds the listeners device.yaml's api section asks for,
// and the certificate keeper HTTPS needs (nil without HTTPS). HTTPS needs
// the flash credentials; if they cannot be had, HTTPS is left off with the
// cause logged, and the rest runs. Both listeners authenticate and
// authorize every request (api.Secure): HTTPS takes the flash's bearer
// tokens and client certificates signed by its CA; vsock, which has no
// TLS, the bearer tokens.
func deviceListeners(cfg Config, dev device.API, handler http.Handler, log *slog.Logger) ([]listener, *certKeeper) {
	var (
		out    []listener
		keeper *certKeeper
	)
	if dev.Listen != "off" {
		k, err := newCertKeeper(cfg.FlashDir, func() ([]string, []net.IP) { return boardSANs(cfg.NodeName, listHostAddrs) }, log)
		if err != nil {
			log.Error("HTTPS API listener off: no usable credentials", "address", dev.Listen, "err", err)
		} else {
			keeper = k
		}
	}
	if keeper == nil && dev.VsockPort < 0 {
		return nil, nil
	}
	auth := api.Auth{Tokens: flashTokens(cfg.FlashDir, keeper, log), Log: log}
	if keeper != nil {
		// Only an admin reaches the signing endpoint (it is under
		// /podboot/), on either listener. Not a ServeMux: it would clean
		// and redirect paths the API answers itself.
		apiHandler, sign := handler, api.CSRHandler(keeper, nil)
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == api.CSRPath {
				sign.ServeHTTP(w, r)
				return
			}
			apiHandler.ServeHTTP(w, r)
		})

		httpsAuth := auth
		pool, err := keeper.clientCAs()
		if err != nil {
			log.Error("HTTPS API: client certificates refused: the flash's CA does not parse", "err", err)
		} else {
			httpsAuth.ClientCAs = pool
		}
		addr := dev.Listen
		srv := &http.Server{
			Handler:           api.Secure(handler, httpsAuth),
			ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{
				GetCertificate: keeper.getCertificate,
				MinVersion:     tls.VersionTLS12,
				// As kube-apiserver: a certificate is asked for and
				// verified by the authenticator, so a bad one is a 401
				// with a Status (and a log line saying why), not a
				// handshake failure, and a client without one can still
				// send a token.
				ClientAuth: tls.RequestClientCert,
			},
			// Handshake errors from port scanners are not news.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		out = append(out, listener{name: "https", srv: srv, tls: true, hint: tcpHint,
			listen: func() (net.Listener, error) { return net.Listen("tcp", addr) }})
	}
	if port := dev.VsockPort; port >= 0 {
		// The same rules as HTTPS; with no TLS there is no client
		// certificate, so a bearer token it is.
		srv := &http.Server{Handler: api.Secure(handler, auth), ReadHeaderTimeout: 10 * time.Second}
		out = append(out, listener{name: "vsock", srv: srv, hint: vsockHint,
			listen: func() (net.Listener, error) { return listenVsock(uint32(port)) }})
	}
	return out, keeper
}

// flashTokens are the bearer tokens the listeners accept: the admin token
// the keeper loaded (or, with HTTPS off or its credentials broken, the
// one on the flash as it is) and the read-only token, made when the set
// lacks it and the keeper has the set in hand.
func flashTokens(flash string, keeper *certKeeper, log *slog.Logger) []api.Token {
	onFlash, loadErr := apiauth.LoadTokens(flash)
	admin, readOnly := onFlash.Admin, onFlash.ReadOnly
	if keeper != nil {
		admin = keeper.token()
		t, created, err := apiauth.EnsureReadOnlyToken(flash)
		switch {
		case err != nil && t == "":
			log.Error("API read-only token: none; read-only clients are refused", "err", err)
		case err != nil:
			log.Warn("could not write the new API read-only token to the flash; serving it from memory until the next start", "err", err)
		case created:
			log.Info("wrote the API read-only token", "file", filepath.Join(flash, apiauth.Dir, apiauth.ReadOnlyTokenFile))
		}
		readOnly = t
	} else if admin == "" && readOnly == "" {
		log.Warn("API over vsock: no bearer token on the flash, so only /healthz, /livez, /readyz and /version answer; turn HTTPS on (device.yaml api.listen) once to make the credentials", "err", loadErr)
	}
	// The users they authenticate as (docs/api.md, "Authentication and
	// authorization"); client certificates name their own.
	var tokens []api.Token
	if admin != "" {
		tokens = append(tokens, api.Token{Token: admin, User: api.User{Name: "admin", Groups: []string{api.GroupAdmin}}})
	}
	if readOnly != "" {
		tokens = append(tokens, api.Token{Token: readOnly, User: api.User{Name: "read-only", Groups: []string{api.GroupReadOnly}}})
	}
	return tokens
}
