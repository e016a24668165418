// Command agnhost is podboot's stand-in for
// registry.k8s.io/e2e-test-images/agnhost: the subcommands the Kubernetes
// docs' examples run, with agnhost's ports, paths and answers.
//
//	liveness        HTTP on :8080: /healthz is 200 "ok" for the first 10 s
//	                after start, then 500 "error: <seconds>"; /started is the
//	                time since start; /redirect?loc=URL redirects (302)
//	serve-hostname  HTTP on --port (9376): answers the hostname
//	pause           waits for SIGINT or SIGTERM, then exits 0
//
// tools/imagebuild builds it (static, stripped) into the image.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// healthyFor is how long agnhost liveness's /healthz answers 200.
const healthyFor = 10 * time.Second

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agnhost:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmd := "pause" // the image's CMD
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("agnhost "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var port *int
	if cmd == "serve-hostname" {
		port = fs.Int("port", 9376, "port to serve on")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, fs.Args())
	}
	switch cmd {
	case "liveness":
		return serve(":8080", livenessHandler(time.Now(), time.Now))
	case "serve-hostname":
		name, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("serve-hostname: %w", err)
		}
		fmt.Fprintf(stdout, "Serving on port %d.\n", *port)
		return serve(fmt.Sprintf(":%d", *port), hostnameHandler(name))
	case "pause":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		fmt.Fprintln(stdout, "Paused")
		<-ctx.Done()
		fmt.Fprintln(stdout, "Shutting down after receiving signal")
		return nil
	default:
		return fmt.Errorf("unknown command %q (this stand-in has liveness, serve-hostname, pause)", cmd)
	}
}

// serve serves h on addr for ever. The servers leave SIGTERM to the Go
// runtime, as agnhost's do, so a stopped container ends as agnhost's does.
func serve(addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		return fmt.Errorf("serve on %s: %w", addr, err)
	}
	return nil
}

// hostnameHandler answers every request with the hostname, as agnhost
// serve-hostname's HTTP server does.
func hostnameHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) })
}

// livenessHandler answers as agnhost liveness does, counting from started
// by now.
func livenessHandler(started time.Time, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/started", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, now().Sub(started).String())
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		d := now().Sub(started)
		if d > healthyFor {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "error: %v", d.Seconds())
			return
		}
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		loc, err := url.QueryUnescape(r.URL.Query().Get("loc"))
		if err != nil {
			http.Error(w, fmt.Sprintf("invalid redirect: %q", r.URL.Query().Get("loc")), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, loc, http.StatusFound)
	})
	return mux
}
