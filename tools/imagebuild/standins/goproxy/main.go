// Command goproxy is podboot's stand-in for registry.k8s.io/goproxy: an
// HTTP forward proxy on :8080, as elazarl/goproxy's basic example that the
// image runs (flags -addr and -v). It forwards requests for absolute URLs,
// tunnels CONNECT, and answers other requests with goproxy's 500.
//
// tools/imagebuild builds it (static, stripped) into the image.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("goproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "should every proxy request be logged to stdout")
	addr := fs.String("addr", ":8080", "proxy listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var logf func(format string, args ...any)
	if *verbose {
		logf = log.New(os.Stdout, "", log.LstdFlags).Printf
	}
	srv := &http.Server{Addr: *addr, Handler: newProxy(logf), ReadHeaderTimeout: time.Minute}
	if err := srv.ListenAndServe(); err != nil {
		return fmt.Errorf("serve on %s: %w", *addr, err)
	}
	return nil
}

// proxy is the forward proxy; logf, when set, logs each request.
type proxy struct {
	forward *httputil.ReverseProxy
	dialer  net.Dialer
	logf    func(format string, args ...any)
}

func newProxy(logf func(format string, args ...any)) *proxy {
	p := &proxy{logf: logf, dialer: net.Dialer{Timeout: 30 * time.Second}}
	p.forward = &httputil.ReverseProxy{
		// The outgoing request keeps the absolute URL the client asked
		// for; ReverseProxy drops the hop-by-hop headers.
		Rewrite: func(*httputil.ProxyRequest) {},
		// goproxy answers a failed round trip with 500 and the error.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		},
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: p.dialer.DialContext},
	}
	return p
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.logf != nil {
		p.logf("%s %s %s", r.RemoteAddr, r.Method, r.RequestURI)
	}
	switch {
	case r.Method == http.MethodConnect:
		p.tunnel(w, r)
	case r.URL.IsAbs():
		p.forward.ServeHTTP(w, r)
	default:
		http.Error(w, "This is a proxy server. Does not respond to non-proxy requests.", http.StatusInternalServerError)
	}
}

// tunnel answers CONNECT host:port: after goproxy's "200 OK" the client's
// connection and the target's are copied into each other until one ends.
func (p *proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	target, err := p.dialer.DialContext(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer target.Close()
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer client.Close()
	if _, err := client.Write([]byte("HTTP/1.0 200 OK\r\n\r\n")); err != nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Bytes the client sent after its CONNECT are already buffered.
		io.Copy(target, buf)
		closeWrite(target)
	}()
	go func() {
		defer wg.Done()
		io.Copy(client, target)
		closeWrite(client)
	}()
	wg.Wait()
}

// closeWrite passes an end of stream on to the other side of the tunnel.
func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		c.Close()
	}
}
