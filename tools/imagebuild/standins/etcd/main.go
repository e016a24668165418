// Command etcd is podboot's stand-in for registry.k8s.io/etcd's
// /usr/local/bin/etcd: it takes etcd's flags, makes its data directory and
// serves, on each of --listen-client-urls, what the Kubernetes docs' gRPC
// probe example asks of etcd: the gRPC health service (grpc.health.v1,
// SERVING for the server, ""), and etcd's HTTP /health and /version. It
// is no key-value store.
//
// The statuses come from PODBOOT_GRPC_HEALTH, so that a test can make the
// probe fail: a comma-separated list of [SERVICE=]STATUS, where STATUS is
// SERVING, NOT_SERVING or UNKNOWN and an entry without a service is the
// server's (""). Default: SERVING. A service not listed is unknown
// (NOT_FOUND), as with grpc-go's health server that etcd runs.
//
// gRPC needs no library here: a unary call is an HTTP/2 POST whose body
// and answer are length-prefixed protobuf messages and whose status is in
// the trailers; net/http serves HTTP/2 without TLS (h2c, prior
// knowledge), as grpc-go's clients speak it. The binary stays small.
//
// tools/imagebuild builds it (static, stripped) into the image.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is the etcd version the stand-in answers for (the image's tag).
const Version = "3.5.1"

// healthEnv names the statuses' environment variable.
const healthEnv = "PODBOOT_GRPC_HEALTH"

// Config is what the stand-in uses of etcd's flags (the URLs as host:port:
// it serves plain http only).
type Config struct {
	Name           string
	DataDir        string
	ClientAddrs    []string
	AdvertiseAddrs []string
	LogLevel       slog.Level
	Health         map[string]servingStatus
	PrintVersion   bool
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv(healthEnv), os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
	if cfg.PrintVersion {
		fmt.Printf("etcd Version: %s\nGit SHA: podboot\nGo Version: stand-in\nGo OS/Arch: linux\n", Version)
		return
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// etcd stops on SIGINT and SIGTERM and exits 0 when it runs as PID 1.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("etcd stand-in failed", "error", err)
		os.Exit(1)
	}
}

// parseConfig reads etcd's flags (one or two dashes, "--flag value" or
// "--flag=value"); those the stand-in has no use for are accepted and
// ignored, others are refused as etcd refuses them.
func parseConfig(args []string, health string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "default", "human-readable name for this member")
	dataDir := fs.String("data-dir", "", "path to the data directory (default ${name}.etcd)")
	listen := fs.String("listen-client-urls", "http://localhost:2379", "list of URLs to listen on for client traffic")
	advertise := fs.String("advertise-client-urls", "http://localhost:2379", "list of this member's client URLs to advertise")
	level := fs.String("log-level", "info", "debug, info, warn, error, panic or fatal")
	version := fs.Bool("version", false, "print the version and exit")
	for _, ignored := range []string{
		"listen-peer-urls", "initial-advertise-peer-urls", "initial-cluster", "initial-cluster-state",
		"initial-cluster-token", "listen-metrics-urls", "logger", "log-outputs", "snapshot-count",
		"heartbeat-interval", "election-timeout", "quota-backend-bytes", "auto-compaction-mode",
		"auto-compaction-retention", "max-request-bytes", "wal-dir", "experimental-initial-corrupt-check",
		"experimental-watch-progress-notify-interval", "cert-file", "key-file", "trusted-ca-file",
		"peer-cert-file", "peer-key-file", "peer-trusted-ca-file", "cipher-suites",
	} {
		fs.String(ignored, "", "accepted and ignored by the stand-in")
	}
	for _, ignored := range []string{"client-cert-auth", "peer-client-cert-auth", "enable-v2", "enable-pprof", "debug"} {
		fs.Bool(ignored, false, "accepted and ignored by the stand-in")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%q is not a valid flag", fs.Arg(0))
	}
	cfg := Config{Name: *name, DataDir: *dataDir, PrintVersion: *version}
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Name + ".etcd"
	}
	var err error
	if cfg.ClientAddrs, err = clientURLs("listen-client-urls", *listen); err != nil {
		return Config{}, err
	}
	if cfg.AdvertiseAddrs, err = clientURLs("advertise-client-urls", *advertise); err != nil {
		return Config{}, err
	}
	switch *level {
	case "debug":
		cfg.LogLevel = slog.LevelDebug
	case "info":
		cfg.LogLevel = slog.LevelInfo
	case "warn":
		cfg.LogLevel = slog.LevelWarn
	case "error", "panic", "fatal":
		cfg.LogLevel = slog.LevelError
	default:
		return Config{}, fmt.Errorf("--log-level %q: want debug, info, warn, error, panic or fatal", *level)
	}
	if cfg.Health, err = parseHealth(health); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// clientURLs splits a comma-separated URL list; the stand-in serves plain
// http only.
func clientURLs(flagName, list string) ([]string, error) {
	var hosts []string
	for _, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		if u.Scheme != "http" {
			return nil, fmt.Errorf("--%s %q: the stand-in serves http only", flagName, s)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, fmt.Errorf("--%s %q: %w", flagName, s, err)
		}
		hosts = append(hosts, u.Host)
	}
	return hosts, nil
}

// parseHealth reads PODBOOT_GRPC_HEALTH.
func parseHealth(s string) (map[string]servingStatus, error) {
	if strings.TrimSpace(s) == "" {
		return map[string]servingStatus{"": serving}, nil
	}
	m := map[string]servingStatus{}
	for _, e := range strings.Split(s, ",") {
		svc, st, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok {
			svc, st = "", svc
		}
		status, ok := parseStatus(st)
		if !ok {
			return nil, fmt.Errorf("%s entry %q: status must be SERVING, NOT_SERVING or UNKNOWN", healthEnv, e)
		}
		m[svc] = status
	}
	return m, nil
}

// run serves every client URL until ctx ends.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %q: %w", cfg.DataDir, err)
	}
	log.Info("starting etcd stand-in", "etcd-version", Version, "name", cfg.Name, "data-dir", cfg.DataDir,
		"advertise-client-urls", cfg.AdvertiseAddrs)
	var lns []net.Listener
	for _, addr := range cfg.ClientAddrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen on client URL %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	return serve(ctx, lns, newHandler(cfg.Health, log), log)
}

// serve serves h on every listener, HTTP/1 and HTTP/2 without TLS, until
// ctx ends. (The standard library only: no errgroup in a stand-in.)
func serve(ctx context.Context, lns []net.Listener, h http.Handler, log *slog.Logger) error {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		log.Info("serving client traffic insecurely; this is strongly discouraged!", "address", ln.Addr().String())
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve on %s: %w", ln.Addr(), err)
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
		log.Info("received signal; shutting down")
	case err = <-errc:
	}
	srv.Close()
	wg.Wait()
	return err
}

// newHandler answers gRPC calls (HTTP/2 with a gRPC content type) with the
// health service, and plain HTTP with etcd's /health and /version.
func newHandler(health map[string]servingStatus, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"health":"true","reason":""}`)
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"etcdserver":%q,"etcdcluster":"3.5.0"}`, Version)
	})
	hs := &healthServer{status: health, log: log}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			hs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
