package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/podboot/podboot/agent/ota/bundle"
	"github.com/podboot/podboot/internal/testenv"
)

// TestMain runs podctl's main when PODCTL_TEST_MAIN holds its arguments
// (separated by US, \x1f: an environment variable holds no NUL), so a test sees what a person sees: stdout, stderr and
// the exit status.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("PODCTL_TEST_MAIN"); ok {
		os.Args = append([]string{"podctl"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs podctl's main in a child process with args.
func runMain(t *testing.T, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PODCTL_TEST_MAIN="+strings.Join(args, "\x1f"), "KUBECONFIG=", "HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("run podctl %q: %v", args, err)
	}
	return out.String(), errOut.String(), exit
}

func TestOTAFlags(t *testing.T) {
	// otaFlags is what the ota commands read of the Config.
	type otaFlags struct {
		Args           []string
		Keys           []string
		Generation     uint64
		Pods, Images   string
		Fleet, Channel string
		Expires        time.Duration
		NextKeys       []string
		NextThreshold  int
		PlainHTTP      bool
		Output, Server string
	}
	tests := []struct {
		name string
		args []string
		want otaFlags
	}{
		{name: "keygen", args: []string{"ota", "keygen", "fleet.key"},
			want: otaFlags{Args: []string{"ota", "keygen", "fleet.key"}}},
		{name: "build", args: strings.Fields("ota build --key k --generation 7 --pods pods -o b.tar"),
			want: otaFlags{Args: []string{"ota", "build"}, Keys: []string{"k"}, Generation: 7, Pods: "pods", Output: "b.tar"}},
		{name: "build, every flag, flags first", args: strings.Fields("--key a --key b --generation 18446744073709551615 --pods p --images i --channel stable --fleet edge --expires 720h --next-key n1.pub --next-key n2.pub --next-threshold 2 --output b.tar ota build"),
			want: otaFlags{Args: []string{"ota", "build"}, Keys: []string{"a", "b"}, Generation: 1<<64 - 1, Pods: "p", Images: "i",
				Channel: "stable", Fleet: "edge", Expires: 720 * time.Hour, NextKeys: []string{"n1.pub", "n2.pub"}, NextThreshold: 2, Output: "b.tar"}},
		{name: "push", args: strings.Fields("ota push b.tar -s http://board:8080"),
			want: otaFlags{Args: []string{"ota", "push", "b.tar"}, Server: "http://board:8080"}},
		{name: "publish", args: strings.Fields("ota publish --plain-http b.tar 127.0.0.1:5000/fleet/edge:stable"),
			want: otaFlags{Args: []string{"ota", "publish", "b.tar", "127.0.0.1:5000/fleet/edge:stable"}, PlainHTTP: true}},
		{name: "status", args: strings.Fields("ota status"),
			want: otaFlags{Args: []string{"ota", "status"}}},
		{name: "status -o json", args: strings.Fields("ota status -o json"),
			want: otaFlags{Args: []string{"ota", "status"}, Output: "json"}},
		{name: "rollback", args: strings.Fields("--server http://board:8080 ota rollback"),
			want: otaFlags{Args: []string{"ota", "rollback"}, Server: "http://board:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			got := otaFlags{Args: cfg.Args, Keys: cfg.Keys, Generation: cfg.Generation, Pods: cfg.Pods, Images: cfg.Images,
				Fleet: cfg.Fleet, Channel: cfg.Channel, Expires: cfg.Expires, NextKeys: cfg.NextKeys, NextThreshold: cfg.NextThreshold,
				PlainHTTP: cfg.PlainHTTP, Output: cfg.Output, Server: cfg.Server}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("podctl %q (-want +got):\n%s", tt.args, diff)
			}
		})
	}
	for _, bad := range [][]string{
		strings.Fields("ota build --generation -1"),
		strings.Fields("ota build --generation x"),
		strings.Fields("ota build --expires 3"),
		strings.Fields("ota build --next-threshold two"),
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("podctl %q: no error", bad)
		}
	}
}

// Commands that are wrong on their face fail before touching a file or
// the network.
func TestOTAUsageErrors(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{"ota", "ota: want a subcommand"},
		{"ota upgrade", `ota: unknown subcommand "upgrade"`},
		{"ota keygen", "ota keygen: want one key file"},
		{"ota keygen a b", "ota keygen: want one key file"},
		{"ota build x --key k --generation 1 --pods p -o b.tar", "ota build: want no arguments"},
		{"ota build --generation 1 --pods p -o b.tar", "ota build: --key KEY is required"},
		{"ota build --key k --pods p -o b.tar", "ota build: --generation N is required"},
		{"ota build --key k --generation 1 -o b.tar", "ota build: --pods DIR is required"},
		{"ota build --key k --generation 1 --pods p", "ota build: -o BUNDLE.tar is required"},
		{"ota build --key k --generation 1 --pods p -o b.tar --expires -1h", "ota build: --expires -1h0m0s is negative"},
		{"ota build --key k --generation 1 --pods p -o b.tar --next-threshold 1", "ota build: --next-threshold 1: want at most the 0 --next-key given"},
		{"ota build --key missing.key --generation 1 --pods p -o b.tar", `ota build: --key "missing.key"`},
		{"ota push", "ota push: want one bundle"},
		{"ota push a b", "ota push: want one bundle"},
		{"ota publish b.tar", "ota publish: want a bundle and a reference"},
		{"ota publish b.tar 127.0.0.1:5000/fleet/edge", `ota publish: "127.0.0.1:5000/fleet/edge": want REGISTRY/REPO:TAG`},
		{"ota publish b.tar 127.0.0.1:5000/fleet/edge@sha256:0000000000000000000000000000000000000000000000000000000000000000", "want REGISTRY/REPO:TAG"},
		{"ota status now", "ota status: want no arguments"},
		{"ota status -o yaml", `ota status: unknown output format "yaml"`},
		{"ota rollback 4", "ota rollback: want no arguments"},
		{"ota status", "no server"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			_, _, err := runPodctl(t, strings.Fields(tt.args), map[string]string{"HOME": dir})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the failed command left %v behind", entries)
			}
		})
	}
}

func TestOTAKeygen(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "fleet.key")
	out, errOut, err := runPodctl(t, []string{"ota", "keygen", key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pubFile, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(pubFile) || !strings.HasPrefix(out, "ed25519:") || strings.Count(out, "\n") != 1 {
		t.Errorf("stdout %q, want the one line of KEY.pub %q", out, pubFile)
	}
	if !strings.Contains(errOut, key+".pub") {
		t.Errorf("stderr %q does not say where the public key went", errOut)
	}
	modes := map[string]os.FileMode{}
	for _, p := range []string{key, key + ".pub"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		modes[filepath.Base(p)] = fi.Mode().Perm()
	}
	if diff := cmp.Diff(map[string]os.FileMode{"fleet.key": 0o600, "fleet.key.pub": 0o644}, modes); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
	priv, err := bundle.LoadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := bundle.ParsePublicKey(out)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Error("KEY.pub is not KEY's public key")
	}

	// A second keygen over it refuses and changes nothing.
	before, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runPodctl(t, []string{"ota", "keygen", key}, nil); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("keygen over an existing key: %v, want a refusal", err)
	}
	for p, want := range map[string][]byte{key: before, key + ".pub": pubFile} {
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s changed (%v)", p, err)
		}
	}
	// Also when only KEY.pub is there.
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runPodctl(t, []string{"ota", "keygen", key}, nil); err == nil {
		t.Error("keygen over an existing KEY.pub: no error")
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused keygen wrote %s (%v)", key, err)
	}
}

// otaFixture is a directory with keys, pods and images to build from.
type otaFixture struct {
	dir, pods, images string
	keys              []string // private key files; their .pub beside them
	pubs              []ed25519.PublicKey
}

func newOTAFixture(t *testing.T, nkeys int) otaFixture {
	t.Helper()
	f := otaFixture{dir: t.TempDir()}
	f.pods, f.images = filepath.Join(f.dir, "pods"), filepath.Join(f.dir, "images")
	for _, d := range []string{f.pods, f.images} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(f.pods, "web.yaml"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: busybox:1.36\n")
	writeFile(t, filepath.Join(f.images, "busybox.tar"), "not really an image archive, but bytes to carry\n")
	for i := range nkeys {
		key := filepath.Join(f.dir, fmt.Sprintf("key%d", i))
		line, err := bundle.GenerateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := bundle.ParsePublicKey(line)
		if err != nil {
			t.Fatal(err)
		}
		f.keys, f.pubs = append(f.keys, key), append(f.pubs, pub)
	}
	return f
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// build runs podctl ota build with args after the fixture's pods and
// returns the bundle's path.
func (f otaFixture) build(t *testing.T, gen int, args ...string) string {
	t.Helper()
	out := filepath.Join(f.dir, fmt.Sprintf("gen%d.tar", gen))
	all := append([]string{"ota", "build", "--generation", fmt.Sprint(gen), "--pods", f.pods, "-o", out}, args...)
	stdout, _, err := runPodctl(t, all, nil)
	if err != nil {
		t.Fatalf("podctl %q: %v", all, err)
	}
	if want := fmt.Sprintf("wrote %s: generation %d\n", out, gen); stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
	return out
}

// open opens and verifies the bundle at path as a board trusting pubs
// (threshold of them) would.
func openBundle(t *testing.T, path string, pubs []ed25519.PublicKey, threshold int) *bundle.Bundle {
	t.Helper()
	ctx := context.Background()
	store, desc, err := bundle.OpenTar(ctx, path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	b, err := bundle.Open(ctx, store, desc, bundle.Policy{Keys: pubs, Threshold: threshold, AgentVersion: "v99.0.0", Now: time.Now()})
	if err != nil {
		t.Fatalf("verify %s: %v", path, err)
	}
	return b
}

func TestOTABuild(t *testing.T) {
	f := newOTAFixture(t, 3)
	next := []string{f.keys[1] + ".pub", f.keys[2] + ".pub"}
	nextLines := make([]string, len(next))
	for i, p := range next {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		nextLines[i] = strings.TrimSpace(string(b))
	}
	tests := []struct {
		name      string
		gen       int
		args      []string
		trust     []ed25519.PublicKey
		threshold int
		want      bundle.Statement // Layers' digests are not compared
		layers    []string         // the layers' names
	}{
		{name: "one key, pods only", gen: 1, args: []string{"--key", f.keys[0]}, trust: f.pubs[:1],
			want: bundle.Statement{Generation: 1}, layers: []string{"pods.tar"}},
		{name: "images, channel, fleet, expiry", gen: 2,
			args:  []string{"--key", f.keys[0], "--images", f.images, "--channel", "stable", "--fleet", "edge", "--expires", "720h"},
			trust: f.pubs[:1], want: bundle.Statement{Generation: 2, Channel: "stable", Fleet: "edge"}, layers: []string{"pods.tar", "busybox.tar"}},
		{name: "two of three", gen: 3, args: []string{"--key", f.keys[0], "--key", f.keys[2]}, trust: f.pubs, threshold: 2,
			want: bundle.Statement{Generation: 3}, layers: []string{"pods.tar"}},
		{name: "rotation", gen: 4, args: []string{"--key", f.keys[0], "--next-key", next[0], "--next-key", next[1], "--next-threshold", "2"},
			trust: f.pubs[:1], want: bundle.Statement{Generation: 4, NextKeys: nextLines, NextThreshold: 2}, layers: []string{"pods.tar"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now().Add(-time.Second)
			b := openBundle(t, f.build(t, tt.gen, tt.args...), tt.trust, tt.threshold)
			got := *b.Statement
			var names []string
			for _, l := range got.Layers {
				names = append(names, l.Name)
			}
			if diff := cmp.Diff(tt.layers, names); diff != "" {
				t.Errorf("layers (-want +got):\n%s", diff)
			}
			if got.IssuedAt.Before(start) || got.IssuedAt.After(time.Now()) {
				t.Errorf("issuedAt %v, want now", got.IssuedAt)
			}
			hasExpiry := slicesContains(tt.args, "--expires")
			if hasExpiry != (got.Expires != nil) || hasExpiry && got.Expires.Sub(got.IssuedAt) != 720*time.Hour {
				t.Errorf("expires %v, issued %v; --expires given: %v", got.Expires, got.IssuedAt, hasExpiry)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(bundle.Statement{}, "Layers", "IssuedAt", "Expires", "MinAgentVersion")); diff != "" {
				t.Errorf("statement (-want +got):\n%s", diff)
			}
		})
	}

	// Signed by one key where two are needed: the board refuses it.
	path := f.build(t, 5, "--key", f.keys[0])
	store, desc, err := bundle.OpenTar(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bundle.Open(context.Background(), store, desc, bundle.Policy{Keys: f.pubs, Threshold: 2, AgentVersion: "v99.0.0", Now: time.Now()})
	var refusal *bundle.Refusal
	if !errors.As(err, &refusal) || refusal.Reason != bundle.ReasonNotEnoughSignatures {
		t.Errorf("one signature of two: %v, want a %s refusal", err, bundle.ReasonNotEnoughSignatures)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A failed build leaves the previous bundle as it was and no temporary
// file; the same key twice is refused (it would count twice toward no
// threshold).
func TestOTABuildFails(t *testing.T) {
	f := newOTAFixture(t, 1)
	out := filepath.Join(f.dir, "b.tar")
	writeFile(t, out, "the previous bundle")
	empty := filepath.Join(f.dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	badPub := filepath.Join(f.dir, "bad.pub")
	writeFile(t, badPub, "rsa:AAAA\n")
	for _, tc := range []struct {
		name, wantErr string
		args          []string
	}{
		{"no manifests", "ota build", []string{"--key", f.keys[0], "--pods", empty}},
		{"missing pods dir", "ota build", []string{"--key", f.keys[0], "--pods", filepath.Join(f.dir, "nope")}},
		{"same key twice", "the same key is given twice", []string{"--key", f.keys[0], "--key", f.keys[0], "--pods", f.pods}},
		{"public key as --key", `--key "` + f.keys[0] + `.pub"`, []string{"--key", f.keys[0] + ".pub", "--pods", f.pods}},
		{"bad next key", `--next-key "` + badPub + `"`, []string{"--key", f.keys[0], "--pods", f.pods, "--next-key", badPub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runPodctl(t, append([]string{"ota", "build", "--generation", "1", "-o", out}, tc.args...), nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if b, err := os.ReadFile(out); err != nil || string(b) != "the previous bundle" {
				t.Errorf("the bundle file is now %q (%v)", b, err)
			}
			entries, err := os.ReadDir(f.dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if diff := cmp.Diff([]string{"b.tar", "bad.pub", "empty", "images", "key0", "key0.pub", "pods"}, names); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// otaAgent serves the OTA endpoints as the agent does, for the admin's
// token; every request is recorded.
type otaAgent struct {
	status   string // the JSON of GET and of a successful POST
	push     func(w http.ResponseWriter, body []byte)
	rollback func(w http.ResponseWriter)
	requests []string
	pushed   []byte
	ctype    string
}

func (a *otaAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests = append(a.requests, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer s3cret" {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /podboot/v1/ota":
		fmt.Fprintln(w, a.status)
	case "POST /podboot/v1/ota/bundles":
		body, err := io.ReadAll(r.Body)
		if err != nil || int64(len(body)) != r.ContentLength {
			http.Error(w, fmt.Sprintf("read %d of %d bytes: %v", len(body), r.ContentLength, err), 400)
			return
		}
		a.pushed, a.ctype = body, r.Header.Get("Content-Type")
		a.push(w, body)
	case "POST /podboot/v1/ota/rollback":
		a.rollback(w)
	default:
		w.WriteHeader(404)
	}
}

func statusAnswer(code int, reason, message, cause string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		details := ""
		if cause != "" {
			details = fmt.Sprintf(`,"details":{"causes":[{"reason":%q,"message":%q}]}`, cause, message)
		}
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q%s,"code":%d}`, message, reason, details, code)
	}
}

func TestOTAStatusFormat(t *testing.T) {
	tests := []struct {
		st   otaStatus
		want string
	}{
		{otaStatus{Generation: 5, State: "committed"}, "generation 5 committed\n"},
		{otaStatus{Generation: 5, State: "trying", Trying: 6, Attempts: 1}, "generation 5 committed; trying 6 (attempt 1 of 3)\n"},
		{otaStatus{Generation: 5, State: "trying", Trying: 6}, "generation 5 committed; trying 6\n"},
		{otaStatus{Generation: 4, State: "rolled-back", Reason: "pod web: not Ready within 5m0s", Failed: []uint64{6, 7}},
			"generation 4 rolled-back: pod web: not Ready within 5m0s\nfailed: 6, 7\n"},
		{otaStatus{Generation: 4, State: "rolled-back"}, "generation 4 rolled-back\n"},
		{otaStatus{Generation: 5, State: "committed", Reason: "bundle generation 3 refused: generation 3 is at or below the committed 5 (replay)", Failed: []uint64{2}},
			"generation 5 committed\nreason: bundle generation 3 refused: generation 3 is at or below the committed 5 (replay)\nfailed: 2\n"},
		{otaStatus{State: "committed", Failed: []uint64{}}, "no generation committed yet\n"},
		{otaStatus{State: "trying", Trying: 1, Attempts: 2}, "no generation committed yet; trying 1 (attempt 2 of 3)\n"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, formatOTAStatus(tt.st)); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.st, diff)
		}
	}
}

func TestOTAClientCommands(t *testing.T) {
	const trying = `{"generation":5,"state":"trying","trying":6,"failed":[3],"attempts":1,"source":"oci://r:5000/fleet/edge:stable"}`
	bundleFile := filepath.Join(t.TempDir(), "b.tar")
	writeFile(t, bundleFile, "bundle bytes")
	answer := func(code int, body string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) { w.WriteHeader(code); fmt.Fprintln(w, body) }
	}
	const refusal = "bundle generation 3 refused: signed by key 0123456789abcdef, which the board does not trust (unknown key)"
	tests := []struct {
		name     string
		args     []string
		push     func(http.ResponseWriter)
		rollback func(http.ResponseWriter)
		wantOut  string
		wantErr  string
		wantReq  []string
	}{
		{name: "status", args: []string{"ota", "status"},
			wantOut: "generation 5 committed; trying 6 (attempt 1 of 3)\nfailed: 3\n", wantReq: []string{"GET /podboot/v1/ota"}},
		{name: "status -o json", args: []string{"ota", "status", "-o", "json"},
			wantOut: `{
    "generation": 5,
    "state": "trying",
    "trying": 6,
    "failed": [
        3
    ],
    "attempts": 1,
    "source": "oci://r:5000/fleet/edge:stable"
}
`, wantReq: []string{"GET /podboot/v1/ota"}},
		{name: "push", args: []string{"ota", "push", bundleFile}, push: answer(200, trying),
			wantOut: "generation 5 committed; trying 6 (attempt 1 of 3)\nfailed: 3\n", wantReq: []string{"POST /podboot/v1/ota/bundles"}},
		{name: "push refused", args: []string{"ota", "push", bundleFile}, push: statusAnswer(422, "Invalid", refusal, "UnknownKey"),
			wantErr: refusal, wantReq: []string{"POST /podboot/v1/ota/bundles"}},
		{name: "push while a trial runs", args: []string{"ota", "push", bundleFile}, push: statusAnswer(409, "Conflict", "generation 6 is on trial", ""),
			wantErr: "Error from server (Conflict): generation 6 is on trial", wantReq: []string{"POST /podboot/v1/ota/bundles"}},
		{name: "push too large", args: []string{"ota", "push", bundleFile}, push: statusAnswer(413, "RequestEntityTooLarge", "Request entity too large: limit is 2147483648", ""),
			wantErr: "Error from server (RequestEntityTooLarge): Request entity too large: limit is 2147483648", wantReq: []string{"POST /podboot/v1/ota/bundles"}},
		{name: "push a missing file", args: []string{"ota", "push", bundleFile + ".nope"}, wantErr: "ota push: open " + bundleFile + ".nope: no such file or directory"},
		{name: "push a directory", args: []string{"ota", "push", filepath.Dir(bundleFile)}, wantErr: fmt.Sprintf("ota push: %q is not a regular file", filepath.Dir(bundleFile))},
		{name: "rollback", args: []string{"ota", "rollback"},
			rollback: answer(200, `{"generation":4,"state":"rolled-back","failed":[5],"reason":"rolled back by the operator"}`),
			wantOut:  "generation 4 rolled-back: rolled back by the operator\nfailed: 5\n", wantReq: []string{"POST /podboot/v1/ota/rollback"}},
		{name: "rollback -o json", args: []string{"ota", "rollback", "-o", "json"},
			rollback: answer(200, `{"generation":4,"state":"rolled-back","failed":[]}`),
			wantOut:  "{\n    \"generation\": 4,\n    \"state\": \"rolled-back\",\n    \"failed\": []\n}\n", wantReq: []string{"POST /podboot/v1/ota/rollback"}},
		{name: "rollback without a previous generation", args: []string{"ota", "rollback"},
			rollback: statusAnswer(409, "Conflict", "no previous committed generation to roll back to", ""),
			wantErr:  "Error from server (Conflict): no previous committed generation to roll back to", wantReq: []string{"POST /podboot/v1/ota/rollback"}},
		{name: "not configured", args: []string{"ota", "rollback"},
			rollback: statusAnswer(501, "", "OTA is not configured: device.yaml has no ota.keys", ""),
			wantErr:  "Error from server: OTA is not configured: device.yaml has no ota.keys", wantReq: []string{"POST /podboot/v1/ota/rollback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := &otaAgent{status: trying,
				push:     func(w http.ResponseWriter, _ []byte) { tt.push(w) },
				rollback: tt.rollback}
			srv := httptest.NewServer(agent)
			defer srv.Close()
			out, _, err := runPodctl(t, append([]string{"--server", srv.URL, "--token", "s3cret"}, tt.args...), nil)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantOut, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantReq, agent.requests); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if tt.push != nil && (string(agent.pushed) != "bundle bytes" || agent.ctype != "application/x-tar") {
				t.Errorf("the agent got %q as %q, want the bundle's bytes as application/x-tar", agent.pushed, agent.ctype)
			}
		})
	}
}

// What a person sees: a refused push prints the board's message after
// "error:" and exits 1; a good one prints the status and exits 0; a
// read-only user's push is the API server's 403.
func TestOTAPushExit(t *testing.T) {
	const refusal = "bundle generation 5 refused: generation 5 is at or below the committed generation 5 (replay)"
	agent := &otaAgent{status: `{"generation":5,"state":"committed","failed":[]}`}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	bundleFile := filepath.Join(t.TempDir(), "b.tar")
	writeFile(t, bundleFile, "bundle bytes")
	tests := []struct {
		name                string
		token               string
		push                func(http.ResponseWriter, []byte)
		wantOut, wantErrOut string
		wantExit            int
	}{
		{name: "accepted", token: "s3cret",
			push: func(w http.ResponseWriter, _ []byte) {
				fmt.Fprint(w, `{"generation":5,"state":"trying","trying":6,"failed":[],"attempts":1}`)
			},
			wantOut: "generation 5 committed; trying 6 (attempt 1 of 3)\n"},
		{name: "refused", token: "s3cret",
			push:       func(w http.ResponseWriter, _ []byte) { statusAnswer(422, "Invalid", refusal, "Replay")(w) },
			wantErrOut: "error: " + refusal + "\n", wantExit: 1},
		{name: "no token", wantErrOut: "error: You must be logged in to the server (Unauthorized)\n", wantExit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent.push = tt.push
			args := []string{"--server", srv.URL, "ota", "push", bundleFile}
			if tt.token != "" {
				args = append(args, "--token", tt.token)
			}
			out, errOut, exit := runMain(t, args...)
			if diff := cmp.Diff([]any{tt.wantOut, tt.wantErrOut, tt.wantExit}, []any{out, errOut, exit}); diff != "" {
				t.Errorf("stdout, stderr, exit status (-want +got):\n%s", diff)
			}
		})
	}
}

// publish pushes the bundle to a registry; pulled back with oras, it is
// the same manifest and blobs, and a board can open it from there.
func TestOTAPublish(t *testing.T) {
	ctx := context.Background()
	// docker login's credentials: none here.
	dockerConfig := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dockerConfig)
	host := testenv.Registry(t)
	f := newOTAFixture(t, 1)
	path := f.build(t, 1, "--key", f.keys[0], "--images", f.images)
	ref := host + "/fleet/edge:stable"
	out, _, err := runPodctl(t, []string{"ota", "publish", "--plain-http", path, ref}, map[string]string{"HOME": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	local, root, err := bundle.OpenTar(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("published %s to %s@%s\n", path, ref, root.Digest); out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}

	repo, err := remote.NewRepository(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	pulled := memory.New()
	desc, err := oras.Copy(ctx, repo, "stable", pulled, "stable", oras.DefaultCopyOptions)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	// A registry's HEAD tells the media type, digest and size only.
	if diff := cmp.Diff(root, desc, cmpopts.IgnoreFields(ocispec.Descriptor{}, "Annotations", "Platform", "ArtifactType")); diff != "" {
		t.Errorf("the tag's manifest (-local +registry):\n%s", diff)
	}
	b := openBundle(t, path, f.pubs, 1)
	// The manifest, its config (the envelope) and every layer.
	descs := []ocispec.Descriptor{root, {MediaType: bundle.MediaTypeEnvelope, Digest: digest.FromBytes(b.Envelope), Size: int64(len(b.Envelope))}}
	for _, l := range b.Statement.Layers {
		descs = append(descs, ocispec.Descriptor{MediaType: l.MediaType, Digest: digest.Digest(l.Digest), Size: l.Size})
	}
	if len(descs) != 4 {
		t.Errorf("%d blobs, want the manifest, the envelope, the pods and one image", len(descs))
	}
	for _, d := range descs {
		want, err := content.FetchAll(ctx, local, d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := content.FetchAll(ctx, pulled, d)
		if err != nil {
			t.Fatalf("the registry's copy lacks %s: %v", d.Digest, err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("blob %s differs", d.Digest)
		}
	}
	// The board's view: the pulled bundle verifies.
	if _, err := bundle.Open(ctx, pulled, desc, bundle.Policy{Keys: f.pubs, AgentVersion: "v99.0.0", Now: time.Now()}); err != nil {
		t.Errorf("open the pulled bundle: %v", err)
	}

	// Publishing again is idempotent; a registry that is not there fails.
	if _, _, err := runPodctl(t, []string{"ota", "publish", "--plain-http", path, ref}, nil); err != nil {
		t.Errorf("publish again: %v", err)
	}
	if _, _, err := runPodctl(t, []string{"ota", "publish", "--plain-http", path, "127.0.0.1:1/fleet/edge:stable"}, nil); err == nil || !strings.Contains(err.Error(), "ota publish") {
		t.Errorf("publish to nowhere: %v", err)
	}
	// A docker config that cannot be read is said so, not ignored.
	writeFile(t, filepath.Join(dockerConfig, "config.json"), "{not json")
	if _, _, err := runPodctl(t, []string{"ota", "publish", "--plain-http", path, ref}, nil); err == nil || !strings.Contains(err.Error(), "read the registry credentials") {
		t.Errorf("publish with a broken docker config: %v", err)
	}
}

func TestOTABuildMinAgentVersion(t *testing.T) {
	f := newOTAFixture(t, 1)
	path := f.build(t, 3, "--key", f.keys[0], "--min-agent-version", "v99.1.0")
	ctx := context.Background()
	store, desc, err := bundle.OpenTar(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bundle.Open(ctx, store, desc, bundle.Policy{Keys: f.pubs, AgentVersion: "v99.0.0", Now: time.Now()})
	var r *bundle.Refusal
	if !errors.As(err, &r) || r.Reason != bundle.ReasonAgentTooOld {
		t.Errorf("a v99.0.0 agent opening a bundle for v99.1.0 and later: %v, want an AgentTooOld refusal", err)
	}
	if b := openBundle(t, f.build(t, 4, "--key", f.keys[0], "--min-agent-version", "v99.0.0"), f.pubs, 1); b.Statement.MinAgentVersion != "v99.0.0" {
		t.Errorf("statement's minAgentVersion = %q, want v99.0.0", b.Statement.MinAgentVersion)
	}
	if _, _, err := runPodctl(t, []string{"ota", "build", "--key", f.keys[0], "--generation", "5", "--pods", f.pods, "--min-agent-version", "13", "-o", filepath.Join(f.dir, "x.tar")}, nil); err == nil {
		t.Error("--min-agent-version 13: no error, want one (not v-prefixed semver)")
	}
}
