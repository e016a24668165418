package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mdlayher/vsock"
)

// parseVsock parses --vsock CID:PORT, both unsigned 32-bit numbers.
func parseVsock(s string) (cid, port uint32, err error) {
	const hint = "want CID:PORT, e.g. 1:10250 inside the guest (1 is the local machine) or GUESTCID:10250 from the host"
	c, p, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("--vsock %q: %s", s, hint)
	}
	cid64, err := strconv.ParseUint(c, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--vsock %q: context ID %q is not a number: %s", s, c, hint)
	}
	port64, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--vsock %q: port %q is not a number: %s", s, p, hint)
	}
	return uint32(cid64), uint32(port64), nil
}

// newVsockClient speaks plain HTTP over AF_VSOCK, sending token (if any)
// as a bearer token: the agent's vsock listener has no TLS, and takes the
// flash's admin or read-only token.
func newVsockClient(cid, port uint32, token string) *client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := vsock.DialContext(ctx, cid, port, nil)
			if err != nil {
				return nil, fmt.Errorf("dial vsock %d:%d: %w", cid, port, err)
			}
			return c, nil
		},
	}
	// The host name only shows in messages and the Host header.
	base := &url.URL{Scheme: "http", Host: "vsock-" + strconv.FormatUint(uint64(cid), 10) + ":" + strconv.FormatUint(uint64(port), 10)}
	return &client{base: base, http: &http.Client{Transport: authTransport{base: tr, user: user{Token: token}}}}
}
