package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxRespBodyLength is how much of a response body an httpGet probe reads
// (kubelet's, 10 KiB).
const maxRespBodyLength = 10 * 1 << 10

// probeHTTP is kubelet's http prober (followNonLocalRedirects false).
func (p *Prober) probeHTTP(ctx context.Context, h *corev1.HTTPGetAction, t Target, timeout time.Duration) (Result, string, error) {
	req, err := NewRequest(h, t.Container, t.PodIP, p.UserAgent)
	if err != nil {
		return Unknown, "", err
	}
	tr, closeConns := NewTransport(p.dialer())
	defer closeConns()
	client := &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: CheckRedirect,
	}
	return doHTTPProbe(req.WithContext(ctx), client)
}

// doHTTPProbe is kubelet's DoHTTPProbe.
func doHTTPProbe(req *http.Request, client *http.Client) (Result, string, error) {
	res, err := client.Do(req)
	if err != nil {
		// Every error is a failure, so that a timeout is one.
		return Failure, err.Error(), nil
	}
	defer res.Body.Close()
	// A body longer than the limit is cut, not an error.
	b, err := io.ReadAll(io.LimitReader(res.Body, maxRespBodyLength))
	if err != nil {
		return Failure, "", err
	}
	body := string(b)
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			// A redirect CheckRedirect did not follow (another host).
			return Warning, fmt.Sprintf("Probe terminated redirects, Response body: %v", body), nil
		}
		return Success, body, nil
	}
	// kubelet keeps the body out of the message (kubernetes#99425).
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// CheckRedirect is kubelet's RedirectChecker(false): redirects are
// followed only to the same host name (any port), at most 10; a redirect
// to another host ends the request with the redirect as the response.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// NewTransport is the transport of kubelet's http prober, dialing with
// dial: no proxy, no compression (no Accept-Encoding header), TLS without
// certificate checks (HTTP/2 when the server offers it, as
// utilnet.SetTransportDefaults configures), and no keep-alive. closeConns
// closes every connection the transport opened: without keep-alive the
// transport closes a connection once its response is read, but in its own
// goroutine, a moment after the caller is done; closeConns makes sure no
// fd outlives the probe.
func NewTransport(dial DialFunc) (tr *http.Transport, closeConns func()) {
	conns := &connSet{dial: dial}
	tr = &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives:   true,
		Proxy:               http.ProxyURL(nil),
		DisableCompression:  true,
		DialContext:         conns.dialContext,
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return tr, func() {
		tr.CloseIdleConnections()
		conns.closeAll()
	}
}

// connSet dials and remembers the connections it made.
type connSet struct {
	dial  DialFunc
	mu    sync.Mutex
	conns []net.Conn
}

func (s *connSet) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := s.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	return c, nil
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		// Most are closed already; that error says nothing.
		_ = c.Close()
	}
	s.conns = nil
}

// NewRequest is kubelet's NewRequestForHTTPGetAction: a GET of
// scheme://host:port/path, host defaulting to podIP and port resolved in
// c, with h's headers; the Host header becomes the request's host, and
// userAgent and "Accept: */*" are sent unless the headers set them (an
// empty Accept header removes it).
func NewRequest(h *corev1.HTTPGetAction, c *corev1.Container, podIP, userAgent string) (*http.Request, error) {
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	port, err := ResolvePort(h.Port, c)
	if err != nil {
		return nil, err
	}
	u := formatURL(scheme, host, port, h.Path)
	headers := make(http.Header)
	for _, hd := range h.HTTPHeaders {
		headers.Add(hd.Name, hd.Value)
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if _, ok := headers["User-Agent"]; !ok && userAgent != "" {
		headers.Set("User-Agent", userAgent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept")
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}

// formatURL is kubelet's: a path that does not parse is passed along as
// is.
func formatURL(scheme, host string, port int, path string) *url.URL {
	u, err := url.Parse(path)
	if err != nil {
		u = &url.URL{Path: path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	return u
}
