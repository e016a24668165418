package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A proxy drops hop-by-hop headers such as Proxy-Authorization.
		io.WriteString(w, r.Method+" "+r.URL.Path+" via-auth="+r.Header.Get("Proxy-Authorization"))
	}))
	defer origin.Close()
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls "+r.URL.Path)
	}))
	defer tlsOrigin.Close()
	proxySrv := httptest.NewServer(newProxy(nil))
	defer proxySrv.Close()
	proxyURL, _ := url.Parse(proxySrv.URL)
	// An address nothing listens on: the forward fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()

	type answer struct {
		Code int
		Body string
	}
	tests := []struct {
		name      string
		url       string
		viaProxy  bool
		wantCode  int
		wantBody  string
		checkBody bool
	}{
		{name: "forward", url: origin.URL + "/a/b", viaProxy: true, wantCode: 200, wantBody: "GET /a/b via-auth=", checkBody: true},
		{name: "connect tunnel", url: tlsOrigin.URL + "/secure", viaProxy: true, wantCode: 200, wantBody: "tls /secure", checkBody: true},
		{name: "not a proxy request", url: proxySrv.URL + "/healthz", wantCode: 500, wantBody: "This is a proxy server. Does not respond to non-proxy requests.\n", checkBody: true},
		{name: "unreachable origin", url: closed, viaProxy: true, wantCode: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
			if tt.viaProxy {
				tr.Proxy = http.ProxyURL(proxyURL)
			}
			req, _ := http.NewRequest("GET", tt.url, nil)
			req.Header.Set("Proxy-Authorization", "Basic eDp5")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			got := answer{Code: resp.StatusCode, Body: string(b)}
			want := answer{Code: tt.wantCode, Body: tt.wantBody}
			if !tt.checkBody {
				got.Body, want.Body = "", ""
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", tt.url, diff)
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	if err := run([]string{"-addr", "127.0.0.1:bad"}, io.Discard); err == nil {
		t.Errorf("run(-addr 127.0.0.1:bad) = nil, want a listen error")
	}
	if err := run([]string{"-nope"}, io.Discard); err == nil {
		t.Errorf("run(-nope) = nil, want a flag error")
	}
}
