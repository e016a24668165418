package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/internal/version"
)

// Config is podctl's command line.
type Config struct {
	Server, Kubeconfig string
	Token, CA          string // kubectl's --token and --certificate-authority
	Vsock              string // CID:PORT: talk over AF_VSOCK instead
	Namespace          string
	AllNamespaces      bool
	Container          string
	Follow             bool
	// kubeconfig: the new user, its kind, how long its certificate is
	// valid, where to write it, and a mounted flash to sign with.
	User     string
	ReadOnly bool
	Duration time.Duration
	// Output is kubeconfig's file, ota build's bundle, or "json" for ota
	// status, push and rollback.
	Output string
	Flash  string
	// ota build: the signing keys (k-of-n: several), the generation, the
	// pods and images directories, and the statement's fleet, channel,
	// lifetime and rotation to next keys; ota publish: plain HTTP.
	Keys           []string
	Generation     uint64
	Pods, Images   string
	Fleet, Channel string
	Expires        time.Duration
	NextKeys       []string
	NextThreshold  int
	// MinAgentVersion is the oldest agent that may take the bundle
	// (default: this podctl's version).
	MinAgentVersion string
	PlainHTTP       bool
	Args            []string // the command and its arguments

	// From the environment.
	KubeconfigEnv, Home string
	// BoardToken is the board's own admin token file (/flash/api/token),
	// which --vsock without --token sends when it is there: podctl run on
	// the board itself, as kubectl in a pod reads its service account's
	// token. "" reads none.
	BoardToken     string
	Stdout, Stderr io.Writer
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	cfg.KubeconfigEnv = os.Getenv("KUBECONFIG")
	cfg.Home, _ = os.UserHomeDir()
	cfg.BoardToken = filepath.Join("/flash", apiauth.Dir, apiauth.TokenFile)
	cfg.Stdout, cfg.Stderr = os.Stdout, os.Stderr
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		// kubectl's form: "error: ..." or "Error from server (Reason): ...".
		var se *statusError
		if errors.As(err, &se) {
			fmt.Fprintln(os.Stderr, se.Error())
		} else {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

const usage = `podctl: a small client of a podboot agent's API

  podctl [--server URL | --kubeconfig FILE | --vsock CID:PORT] [-n NS | -A] get pods
  podctl logs POD [-c CONTAINER] [-f]
  podctl version
  podctl poweroff
  podctl reboot
  podctl kubeconfig --user NAME [--read-only] [--duration 8760h] [-o FILE]
  podctl kubeconfig --flash DIR --server URL --user NAME [--read-only] [-o FILE]
  podctl ota keygen KEY
  podctl ota build --key KEY [--key KEY2...] --generation N --pods DIR [--images DIR]
      [--channel NAME] [--fleet NAME] [--expires 720h] [--min-agent-version v0.13.0]
      [--next-key FILE.pub...] [--next-threshold K] -o BUNDLE.tar
  podctl ota push BUNDLE.tar
  podctl ota publish [--plain-http] BUNDLE.tar REGISTRY/REPO:TAG
  podctl ota status [-o json]
  podctl ota rollback

kubeconfig writes a kubeconfig for a new user with a client certificate the
board's CA signs (asked of the board with an admin's kubeconfig or token,
or, with --flash, signed with the CA key of a board's flash mounted here).
--vsock goes with --token: the vsock listener takes the flash's bearer
tokens (api/token, api/read-only-token).

ota keygen writes an ed25519 signing key KEY (mode 0600) and KEY.pub, the
line device.yaml's ota.keys takes. ota build writes a signed bundle (an
OCI image layout tar); ota push sends it to the board, ota publish to a
registry the boards poll (docker login's credentials). ota status prints
the generation running, the one on trial and those that failed (-o json:
as the board sends it); ota rollback goes back to the previous committed
generation.

Flags may come before or after the command, as with kubectl.
`

// parseFlags parses flags wherever they are among the arguments.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("podctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Server, "server", "", "the address of the agent's API (overrides the kubeconfig's)")
	fs.StringVar(&cfg.Server, "s", "", "shorthand for --server")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "path to a kubeconfig file")
	fs.StringVar(&cfg.Token, "token", "", "bearer token for the API (overrides the kubeconfig's credentials)")
	fs.StringVar(&cfg.CA, "certificate-authority", "", "path to the CA certificate file (overrides the kubeconfig's)")
	fs.StringVar(&cfg.Vsock, "vsock", "", "talk to the agent over AF_VSOCK at CID:PORT instead of a server: 1:10250 inside the guest, GUESTCID:10250 from the hypervisor host")
	fs.StringVar(&cfg.Namespace, "namespace", "", "namespace (default: the context's, else default)")
	fs.StringVar(&cfg.Namespace, "n", "", "shorthand for --namespace")
	fs.BoolVar(&cfg.AllNamespaces, "all-namespaces", false, "list across all namespaces")
	fs.BoolVar(&cfg.AllNamespaces, "A", false, "shorthand for --all-namespaces")
	fs.StringVar(&cfg.Container, "container", "", "logs: the container (default: the only one)")
	fs.StringVar(&cfg.Container, "c", "", "shorthand for --container")
	fs.BoolVar(&cfg.Follow, "follow", false, "logs: keep streaming")
	fs.BoolVar(&cfg.Follow, "f", false, "shorthand for --follow")
	fs.StringVar(&cfg.User, "user", "", "kubeconfig: the new user's name (its client certificate's CommonName)")
	fs.BoolVar(&cfg.ReadOnly, "read-only", false, "kubeconfig: a read-only user (get, list, watch, logs; group "+apiauth.GroupReadOnly+") instead of an admin ("+apiauth.GroupAdmin+")")
	fs.DurationVar(&cfg.Duration, "duration", apiauth.DefaultClientValidity, "kubeconfig: how long the client certificate is valid")
	fs.StringVar(&cfg.Output, "output", "", "kubeconfig: write it to this file (mode 0600) instead of stdout; ota build: the bundle file; ota status, push, rollback: json")
	fs.StringVar(&cfg.Output, "o", "", "shorthand for --output")
	fs.Var((*stringList)(&cfg.Keys), "key", "ota build: a private key to sign with (repeat for k-of-n)")
	fs.Uint64Var(&cfg.Generation, "generation", 0, "ota build: the bundle's generation (above every one before it)")
	fs.StringVar(&cfg.Pods, "pods", "", "ota build: the directory of the generation's pod manifests")
	fs.StringVar(&cfg.Images, "images", "", "ota build: a directory of image archives (*.tar) to import on the board")
	fs.StringVar(&cfg.Channel, "channel", "", "ota build: the channel (a board whose ota.channel differs refuses it)")
	fs.StringVar(&cfg.Fleet, "fleet", "", "ota build: the fleet's name, for the record")
	fs.StringVar(&cfg.MinAgentVersion, "min-agent-version", "", "ota build: boards whose agent is older refuse the bundle (AgentTooOld; default: this podctl's version, "+version.Version+")")
	fs.DurationVar(&cfg.Expires, "expires", 0, "ota build: refused by boards with a trusted clock this long after now (0: never)")
	fs.Var((*stringList)(&cfg.NextKeys), "next-key", "ota build: a public key file (KEY.pub) the boards trust once this generation commits (repeat; key rotation)")
	fs.IntVar(&cfg.NextThreshold, "next-threshold", 0, "ota build: how many of the next keys must sign (0: one)")
	fs.BoolVar(&cfg.PlainHTTP, "plain-http", false, "ota publish: talk plain HTTP to the registry")
	fs.StringVar(&cfg.Flash, "flash", "", "kubeconfig: sign with the CA key of this mounted board flash instead of asking the board")
	for {
		if err := fs.Parse(args); err != nil {
			return cfg, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			cfg.Args = append(cfg.Args, rest[1:]...)
			break
		}
		cfg.Args = append(cfg.Args, rest[0])
		args = rest[1:]
	}
	if len(cfg.Args) == 0 {
		fs.Usage()
		return cfg, errors.New("no command")
	}
	return cfg, nil
}

// run runs one command.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cmd, args := cfg.Args[0], cfg.Args[1:]
	switch cmd {
	case "get", "logs", "version", "poweroff", "reboot":
	case "ota":
		return runOTA(ctx, cfg, args)
	case "kubeconfig":
		if len(args) != 0 {
			return fmt.Errorf("kubeconfig: unexpected arguments %q: podctl kubeconfig --user NAME [--read-only] [-o FILE]", args)
		}
		return newKubeconfig(ctx, cfg)
	default:
		return fmt.Errorf("unknown command %q (want get, logs, version, poweroff, reboot, kubeconfig or ota)", cmd)
	}
	c, ns, err := connect(cfg)
	if err != nil {
		if cmd == "version" {
			fmt.Fprintf(cfg.Stdout, "Client Version: %s\n", clientVersion())
		}
		return err
	}
	if cfg.Namespace != "" {
		ns = cfg.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	switch cmd {
	case "get":
		if len(args) != 1 || (args[0] != "pods" && args[0] != "pod" && args[0] != "po") {
			return fmt.Errorf("get: only 'get pods' is supported, not %q", args)
		}
		return getPods(ctx, c, ns, cfg.AllNamespaces, cfg.Stdout, cfg.Stderr)
	case "logs":
		if len(args) != 1 {
			return errors.New("logs: want exactly one pod name: podctl logs POD [-c CONTAINER] [-f]")
		}
		return podLogs(ctx, c, ns, args[0], cfg.Container, cfg.Follow, cfg.Stdout)
	case "poweroff", "reboot":
		if len(args) != 0 {
			return fmt.Errorf("%s: unexpected arguments %q", cmd, args)
		}
		return power(ctx, c, cmd, cfg.Stdout)
	default:
		if len(args) != 0 {
			return fmt.Errorf("version: unexpected arguments %q", args)
		}
		return printVersion(ctx, c, cfg.Stdout)
	}
}

// connect finds the agent: over AF_VSOCK with --vsock, else as kubectl
// finds a server. It returns the context's namespace, if any.
func connect(cfg Config) (*client, string, error) {
	if cfg.Vsock != "" {
		if cfg.Server != "" || cfg.Kubeconfig != "" || cfg.CA != "" {
			return nil, "", errors.New("--vsock talks to the agent directly: it does not go with --server, --kubeconfig or --certificate-authority (it does with --token)")
		}
		cid, port, err := parseVsock(cfg.Vsock)
		if err != nil {
			return nil, "", err
		}
		token := cfg.Token
		if token == "" && cfg.BoardToken != "" {
			// On the board: its root shell can read the flash anyway.
			b, err := os.ReadFile(cfg.BoardToken)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, "", fmt.Errorf("--vsock without --token: read the board's token: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		return newVsockClient(cid, port, token), "", nil
	}
	t, err := findServer(cfg)
	if err != nil {
		return nil, "", err
	}
	c, err := newClient(t)
	if err != nil {
		return nil, "", err
	}
	return c, t.Namespace, nil
}

// findServer is the server and credentials kubectl would use, with
// --token and --certificate-authority over the kubeconfig's.
func findServer(cfg Config) (target, error) {
	t, err := findTarget(cfg.Server, cfg.Kubeconfig, cfg.KubeconfigEnv, cfg.Home)
	if err != nil {
		return t, err
	}
	if cfg.Token != "" {
		// As kubectl: --token replaces the user's credentials.
		t.User = user{Token: cfg.Token}
	}
	if cfg.CA != "" {
		t.Cluster.CertificateAuthority, t.Cluster.CertificateAuthorityData = cfg.CA, nil
	}
	return t, nil
}

// stringList is a flag that may repeat; each value is appended.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
