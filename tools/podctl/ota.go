package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"
	"golang.org/x/mod/semver"

	"github.com/podboot/podboot/agent/ota/bundle"
)

// The agent's OTA endpoints (agent/api/ota.go).
const (
	otaPath         = "/podboot/v1/ota"
	otaBundlesPath  = "/podboot/v1/ota/bundles"
	otaRollbackPath = "/podboot/v1/ota/rollback"
)

// otaMaxAttempts is how many starts a trial gets (agent/ota/trial's
// MaxAttempts), for "attempt 1 of 3".
const otaMaxAttempts = 3

// otaStatus is the agent's OTA status (agent/api.OTAStatus).
type otaStatus struct {
	Generation uint64   `json:"generation"`
	State      string   `json:"state"`
	Trying     uint64   `json:"trying,omitempty"`
	Failed     []uint64 `json:"failed"`
	Reason     string   `json:"reason,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	Source     string   `json:"source,omitempty"`
}

const otaUsage = "podctl ota keygen KEY | build --key KEY --generation N --pods DIR [--images DIR] [--channel NAME] -o BUNDLE.tar | push BUNDLE.tar | publish [--plain-http] BUNDLE.tar REGISTRY/REPO:TAG | status [-o json] | rollback"

// runOTA runs podctl ota SUBCOMMAND ARGS.
func runOTA(ctx context.Context, cfg Config, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("ota: want a subcommand: %s", otaUsage)
	}
	sub, args := args[0], args[1:]
	want := func(n int, shape string) error {
		if len(args) != n {
			return fmt.Errorf("ota %s: want %s, not %q", sub, shape, args)
		}
		return nil
	}
	switch sub {
	case "keygen":
		if err := want(1, "one key file: podctl ota keygen KEY"); err != nil {
			return err
		}
		return otaKeygen(args[0], cfg.Stdout, cfg.Stderr)
	case "build":
		if err := want(0, "no arguments: podctl ota build --key KEY --generation N --pods DIR [--images DIR] [--channel NAME] -o BUNDLE.tar"); err != nil {
			return err
		}
		return otaBuild(ctx, cfg)
	case "publish":
		if err := want(2, "a bundle and a reference: podctl ota publish [--plain-http] BUNDLE.tar REGISTRY/REPO:TAG"); err != nil {
			return err
		}
		return otaPublish(ctx, args[0], args[1], cfg.PlainHTTP, cfg.Stdout)
	case "push", "status", "rollback":
	default:
		return fmt.Errorf("ota: unknown subcommand %q: %s", sub, otaUsage)
	}
	if cfg.Output != "" && cfg.Output != "json" {
		return fmt.Errorf("ota %s: unknown output format %q (want -o json, or nothing)", sub, cfg.Output)
	}
	var err error
	if sub == "push" {
		err = want(1, "one bundle: podctl ota push BUNDLE.tar")
	} else {
		err = want(0, "no arguments")
	}
	if err != nil {
		return err
	}
	c, _, err := connect(cfg)
	if err != nil {
		return err
	}
	var raw []byte
	switch sub {
	case "push":
		raw, err = otaPush(ctx, c, args[0])
	case "status":
		raw, err = c.getJSON(ctx, otaPath)
	default:
		raw, err = c.postJSON(ctx, otaRollbackPath, "", nil, -1)
	}
	if err != nil {
		return err
	}
	return printOTAStatus(cfg.Stdout, raw, cfg.Output == "json")
}

// otaKeygen writes KEY and KEY.pub and prints the public key line, as
// device.yaml's ota.keys takes it.
func otaKeygen(path string, stdout, stderr io.Writer) error {
	pub, err := bundle.GenerateKey(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote the private key to %s (keep it secret) and the public key to %s.pub:\n", path, path)
	fmt.Fprintln(stdout, pub)
	return nil
}

// otaBuild writes a signed bundle to -o, replacing it atomically: a failed
// build leaves no half-written bundle behind to be pushed by mistake.
func otaBuild(ctx context.Context, cfg Config) error {
	opts, err := buildOptions(cfg)
	if err != nil {
		return err
	}
	f, err := renameio.NewPendingFile(cfg.Output, renameio.WithPermissions(0o644), renameio.WithExistingPermissions())
	if err != nil {
		return fmt.Errorf("ota build: create %q: %w", cfg.Output, err)
	}
	defer f.Cleanup()
	if err := bundle.Build(ctx, opts, f); err != nil {
		return fmt.Errorf("ota build %q: %w", cfg.Output, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("ota build: write %q: %w", cfg.Output, err)
	}
	fmt.Fprintf(cfg.Stdout, "wrote %s: generation %d\n", cfg.Output, opts.Generation)
	return nil
}

// buildOptions checks build's flags and reads the keys they name.
func buildOptions(cfg Config) (bundle.BuildOptions, error) {
	opts := bundle.BuildOptions{
		Generation:      cfg.Generation,
		PodsDir:         cfg.Pods,
		ImagesDir:       cfg.Images,
		Fleet:           cfg.Fleet,
		Channel:         cfg.Channel,
		NextThreshold:   cfg.NextThreshold,
		ExpiresIn:       cfg.Expires,
		MinAgentVersion: cfg.MinAgentVersion,
	}
	switch {
	case len(cfg.Keys) == 0:
		return opts, errors.New("ota build: --key KEY is required (repeat it to sign with several keys)")
	case cfg.Generation == 0:
		return opts, errors.New("ota build: --generation N is required (a number above 0, above the fleet's last)")
	case cfg.Pods == "":
		return opts, errors.New("ota build: --pods DIR is required")
	case cfg.Output == "":
		return opts, errors.New("ota build: -o BUNDLE.tar is required")
	case cfg.Expires < 0:
		return opts, fmt.Errorf("ota build: --expires %s is negative", cfg.Expires)
	case cfg.MinAgentVersion != "" && !semver.IsValid(cfg.MinAgentVersion):
		return opts, fmt.Errorf("ota build: --min-agent-version %q is not a semantic version like v0.13.0", cfg.MinAgentVersion)
	case cfg.NextThreshold < 0 || cfg.NextThreshold > len(cfg.NextKeys):
		return opts, fmt.Errorf("ota build: --next-threshold %d: want at most the %d --next-key given", cfg.NextThreshold, len(cfg.NextKeys))
	}
	for _, path := range cfg.Keys {
		key, err := bundle.LoadPrivateKey(path)
		if err != nil {
			return opts, fmt.Errorf("ota build: --key %q: %w", path, err)
		}
		for _, k := range opts.Keys {
			if k.Equal(key) {
				return opts, fmt.Errorf("ota build: --key %q: the same key is given twice (a threshold counts distinct keys)", path)
			}
		}
		opts.Keys = append(opts.Keys, key)
	}
	for _, path := range cfg.NextKeys {
		b, err := os.ReadFile(path)
		if err != nil {
			return opts, fmt.Errorf("ota build: --next-key: %w", err)
		}
		line := strings.TrimSpace(string(b))
		if _, err := bundle.ParsePublicKey(line); err != nil {
			return opts, fmt.Errorf("ota build: --next-key %q: %w", path, err)
		}
		opts.NextKeys = append(opts.NextKeys, line)
	}
	return opts, nil
}

// otaPush sends the bundle to the board, which answers once the trial
// began. A refused bundle is a refusedError with the board's message.
func otaPush(ctx context.Context, c *client, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ota push: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ota push: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ota push: %q is not a regular file", path)
	}
	raw, err := c.postJSON(ctx, otaBundlesPath, "application/x-tar", f, fi.Size())
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusUnprocessableEntity && se.status.Message != "" {
		return nil, refusedError{se.status.Message}
	}
	return raw, err
}

// refusedError is the board's refusal of a bundle: main prints it as
// "error: <the board's message>", which names the reason.
type refusedError struct{ message string }

func (e refusedError) Error() string { return e.message }

// printOTAStatus prints the status as JSON (indented, every field the
// board sent) or as lines for a person:
//
//	generation 5 committed; trying 6 (attempt 1 of 3)
//	failed: 3, 4
func printOTAStatus(w io.Writer, raw []byte, asJSON bool) error {
	if asJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "    "); err != nil {
			return fmt.Errorf("decode the OTA status: %w", err)
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	var st otaStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decode the OTA status: %w", err)
	}
	_, err := io.WriteString(w, formatOTAStatus(st))
	return err
}

func formatOTAStatus(st otaStatus) string {
	var b strings.Builder
	if st.Generation == 0 {
		b.WriteString("no generation committed yet")
	} else {
		state := st.State
		if state == "" || state == "trying" {
			// The committed generation still runs when nothing is tried.
			state = "committed"
		}
		fmt.Fprintf(&b, "generation %d %s", st.Generation, state)
	}
	if st.State == "rolled-back" && st.Reason != "" {
		fmt.Fprintf(&b, ": %s", st.Reason)
	}
	if st.Trying != 0 {
		fmt.Fprintf(&b, "; trying %d", st.Trying)
		if st.Attempts > 0 {
			fmt.Fprintf(&b, " (attempt %d of %d)", st.Attempts, otaMaxAttempts)
		}
	}
	b.WriteByte('\n')
	if st.State != "rolled-back" && st.Reason != "" {
		// The last refusal's reason.
		fmt.Fprintf(&b, "reason: %s\n", st.Reason)
	}
	if len(st.Failed) > 0 {
		gens := make([]string, len(st.Failed))
		for i, g := range st.Failed {
			gens[i] = strconv.FormatUint(g, 10)
		}
		fmt.Fprintf(&b, "failed: %s\n", strings.Join(gens, ", "))
	}
	return b.String()
}

// getJSON sends GET path and returns the body of a 2xx answer.
func (c *client) getJSON(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.get(ctx, path, nil, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read the answer: %w", path, err)
	}
	return b, nil
}

// postJSON sends POST path with body (size bytes of contentType; nil for
// none) and returns the body of a 2xx answer, or the server's Status as a
// *statusError.
func (c *client) postJSON(ctx context.Context, path, contentType string, body io.Reader, size int64) ([]byte, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u.String(), err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, decodeStatus(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("POST %s: read the answer: %w", u.String(), err)
	}
	return b, nil
}
