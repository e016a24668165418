package containerd

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// registryDialTimeout bounds one connection attempt to a registry, name
// lookup included: how long a board behind an uplink that drops every
// packet waits for each registry before it runs the image it already has
// (measured: 10.0 s per host; 30.0 s with containerd's default). 10 s
// still covers a lost SYN (resent after 1 s and 3 s) and a lost DNS query
// (Go's resolver asks again after 5 s) on a slow link.
const registryDialTimeout = 10 * time.Second

// registryTransport is containerd's default registry transport with
// registryDialTimeout.
func registryTransport() *http.Transport {
	t := docker.DefaultHTTPTransport(nil)
	t.DialContext = (&net.Dialer{
		Timeout:       registryDialTimeout,
		KeepAlive:     30 * time.Second,
		FallbackDelay: 300 * time.Millisecond,
	}).DialContext
	return t
}

// pullWatch is the transport of one pull. It tells "no registry answered"
// (the board is offline) from "a registry answered with an error" (not
// found, unauthorized), which containerd's resolver error does not: it
// keeps one host's error, and a mirror that answered not found outranks
// an upstream that could not be reached. It also gives up on a host that
// could not be reached instead of letting the resolver retry it, so an
// offline pull takes one attempt per host: containerd retries the last
// host up to five times after a TLS handshake timeout (measured: 50 s
// against a host that accepts connections and never speaks TLS, 10 s
// with this).
type pullWatch struct {
	next http.RoundTripper

	mu sync.Mutex
	// answered: some host sent an HTTP response, whatever its status.
	answered bool
	// unreached counts requests that found no one to answer.
	unreached int
	// other: a request failed in another way (a TLS certificate refused,
	// a connection reset, the pull cancelled): a server may be there.
	other bool
	// dead are the hosts that could not be reached, with the failure
	// repeated to any later request to them in this pull.
	dead map[string]error
}

func (w *pullWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	w.mu.Lock()
	err, dead := w.dead[host]
	w.mu.Unlock()
	if dead {
		return nil, err
	}
	resp, err := w.next.RoundTrip(req)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		w.answered = true
	case req.Context().Err() == nil && unreachable(err):
		w.unreached++
		if w.dead == nil {
			w.dead = map[string]error{}
		}
		w.dead[host] = err
	default:
		w.other = true
	}
	return resp, err
}

// noRegistryAnswered reports whether every request of the pull found no
// one to answer.
func (w *pullWatch) noRegistryAnswered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.answered && !w.other && w.unreached > 0
}

// unreachable reports whether a request's error means no one answered:
// the connection could not be made (name lookup failed, refused, no
// route, timed out), or it was made and nothing answered in time (a TLS
// handshake or response headers timing out, as behind a captive or
// broken uplink). An error from a server that spoke (a TLS certificate or
// alert, a reset after connecting) is not.
func unreachable(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	// A proxy's dial error is wrapped as a "proxyconnect" OpError, so look
	// past the first OpError.
	for e := err; e != nil; {
		var op *net.OpError
		if !errors.As(e, &op) {
			break
		}
		if op.Op == "dial" {
			return true
		}
		e = op.Err
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
