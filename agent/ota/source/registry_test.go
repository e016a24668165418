package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// faults sits in front of go-containerregistry's registry and misbehaves
// on blob GETs as a flaky link or a broken registry would.
type faults struct {
	cutFirstAfter int64 // the first blob GET's body stops after this many bytes (0: never)
	ignoreRange   bool  // blob GETs are answered 200 with the whole blob whatever their Range
	flipByte      bool  // the first byte of every blob body is changed
	noLength      bool  // blob bodies are sent chunked, without Content-Length
	hang          bool  // the cut first GET hangs instead of dropping the connection

	mu     sync.Mutex
	ranges []string // the Range header of every blob GET, in order ("" for none)
	other  int      // other GETs and HEADs (manifests, tags)
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		isBlobGet := req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:")
		if !isBlobGet {
			if req.Method == http.MethodGet || req.Method == http.MethodHead {
				f.mu.Lock()
				f.other++
				f.mu.Unlock()
			}
			next.ServeHTTP(w, req)
			return
		}
		f.mu.Lock()
		f.ranges = append(f.ranges, req.Header.Get("Range"))
		first := len(f.ranges) == 1
		f.mu.Unlock()
		if f.ignoreRange {
			req.Header.Del("Range")
		}
		fw := &faultWriter{ResponseWriter: w, left: -1, flip: f.flipByte, noLength: f.noLength}
		if f.hang {
			fw.hang = req.Context().Done()
		}
		if first && f.cutFirstAfter > 0 {
			fw.left = f.cutFirstAfter
		}
		next.ServeHTTP(fw, req)
	})
}

func (f *faults) blobGets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ranges...)
}

// faultWriter hides http.response's ReaderFrom so every byte passes Write.
type faultWriter struct {
	http.ResponseWriter
	left     int64 // bytes still to send before the connection is dropped; -1 = all
	flip     bool
	noLength bool
	hang     <-chan struct{} // when set, the cut waits for the client to give up
	cut      bool
}

func (w *faultWriter) WriteHeader(code int) {
	if w.noLength {
		w.Header().Del("Content-Length")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if w.cut {
		return 0, errors.New("connection dropped by the test")
	}
	if w.flip && len(p) > 0 {
		p = append([]byte{p[0] ^ 0xff}, p[1:]...)
		w.flip = false
	}
	if w.left >= 0 && int64(len(p)) > w.left {
		w.ResponseWriter.Write(p[:w.left])
		rc := http.NewResponseController(w.ResponseWriter)
		rc.Flush()
		if w.hang != nil {
			<-w.hang
		}
		if conn, _, err := rc.Hijack(); err == nil {
			conn.Close()
		}
		w.cut = true
		return 0, errors.New("connection dropped by the test")
	}
	if w.left >= 0 {
		w.left -= int64(len(p))
	}
	return w.ResponseWriter.Write(p)
}

// artifact is what testRegistry pushed: a manifest tagged v1 whose config
// is small and whose one layer is big enough to be cut in the middle.
type artifact struct {
	host             string
	ref              string // host/ota/edge:v1
	manifest, config ocispec.Descriptor
	layer            ocispec.Descriptor
	layerData        []byte
	manifestData     []byte
}

// testRegistry serves go-containerregistry's registry on 127.0.0.1 behind
// f and pushes an artifact to it with oras-go.
func testRegistry(t *testing.T, f *faults) artifact {
	t.Helper()
	srv := httptest.NewServer(f.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	if !strings.HasPrefix(host, "127.0.0.1:") {
		t.Fatalf("test registry listens on %s, not 127.0.0.1", host)
	}
	ctx := t.Context()
	repo, err := remote.NewRepository(host + "/ota/edge")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	a := artifact{host: host, ref: host + "/ota/edge:v1"}
	rnd := rand.New(rand.NewPCG(1, 2))
	a.layerData = make([]byte, 200<<10)
	for i := range a.layerData {
		a.layerData[i] = byte(rnd.Uint32())
	}
	if a.layer, err = oras.PushBytes(ctx, repo, "application/vnd.podboot.test.layer", a.layerData); err != nil {
		t.Fatalf("push layer: %v", err)
	}
	if a.config, err = oras.PushBytes(ctx, repo, "application/vnd.podboot.test.config+json", []byte(`{"generation":1}`)); err != nil {
		t.Fatalf("push config: %v", err)
	}
	a.manifest, err = oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.podboot.test", oras.PackManifestOptions{
		ConfigDescriptor: &a.config,
		Layers:           []ocispec.Descriptor{a.layer},
	})
	if err != nil {
		t.Fatalf("push manifest: %v", err)
	}
	if err := repo.Tag(ctx, a.manifest, "v1"); err != nil {
		t.Fatalf("tag: %v", err)
	}
	rc, err := repo.Fetch(ctx, a.manifest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if a.manifestData, err = content.ReadAll(rc, a.manifest); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.ranges, f.other = nil, 0 // the push is not what the tests count
	f.mu.Unlock()
	return a
}

func readAll(t *testing.T, fetcher content.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	t.Helper()
	rc, err := fetcher.Fetch(t.Context(), desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// cacheFiles lists CacheDir's names with their sizes.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprintf("%s %d", e.Name(), info.Size()))
	}
	sort.Strings(names)
	return names
}

func cacheName(d ocispec.Descriptor) string {
	return d.Digest.Algorithm().String() + "-" + d.Digest.Encoded()
}

func TestResolveAndFetch(t *testing.T) {
	f := &faults{}
	a := testRegistry(t, f)
	r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: filepath.Join(t.TempDir(), "downloads")}

	desc, err := r.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := ocispec.Descriptor{MediaType: a.manifest.MediaType, Digest: a.manifest.Digest, Size: a.manifest.Size}
	if diff := cmp.Diff(want, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}); diff != "" {
		t.Errorf("Resolve (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{
		{desc, a.manifestData},
		{a.config, []byte(`{"generation":1}`)},
		{a.layer, a.layerData},
	} {
		got, err := readAll(t, r.Storage(), tc.desc)
		if err != nil {
			t.Fatalf("fetch %s: %v", tc.desc.Digest, err)
		}
		if !bytes.Equal(got, tc.data) {
			t.Errorf("fetch %s: got %d bytes that differ from the %d pushed", tc.desc.Digest, len(got), len(tc.data))
		}
	}
	wantFiles := []string{
		cacheName(a.config) + " 16",
		cacheName(a.layer) + fmt.Sprintf(" %d", len(a.layerData)),
		cacheName(a.manifest) + fmt.Sprintf(" %d", a.manifest.Size),
	}
	sort.Strings(wantFiles)
	if diff := cmp.Diff(wantFiles, cacheFiles(t, r.CacheDir)); diff != "" {
		t.Errorf("cache (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"", ""}, f.blobGets()); diff != "" {
		t.Errorf("blob GETs' Range headers (-want +got):\n%s", diff)
	}
}

func TestResolveErrors(t *testing.T) {
	a := testRegistry(t, &faults{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	tlsSrv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(tlsSrv.Close)
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")

	for _, tc := range []struct {
		name, ref string
		plainHTTP bool
		want      string // in the error, after the reference
	}{
		{"no such tag", a.host + "/ota/edge:v2", true, "not found"},
		{"no such repository", a.host + "/ota/nothing:v1", true, "not found"},
		{"connection refused", refused + "/ota/edge:v1", true, "connection refused"},
		{"TLS", tlsHost + "/ota/edge:v1", false, "certificate signed by unknown authority"},
		{"no tag", a.host + "/ota/edge", true, "no tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Registry{Ref: tc.ref, PlainHTTP: tc.plainHTTP, CacheDir: t.TempDir()}
			_, err := r.Resolve(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.ref) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve: %v, want an error naming %q and %q", err, tc.ref, tc.want)
			}
		})
	}
}

// TestFetchResume cuts the first download of the layer in the middle and
// checks the next fetch asks only for the rest, or starts over when the
// registry ignores the range, and that either way the result verifies.
func TestFetchResume(t *testing.T) {
	const cut = 70000
	for _, tc := range []struct {
		name        string
		ignoreRange bool
	}{
		{"resumed", false},
		{"registry ignores Range", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faults{cutFirstAfter: cut, ignoreRange: tc.ignoreRange}
			a := testRegistry(t, f)
			dir := t.TempDir()
			r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir}

			_, err := readAll(t, r.Storage(), a.layer)
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), a.layer.Digest.String()) {
				t.Fatalf("first fetch: %v, want ErrTruncated naming %s and \"truncated\"", err, a.layer.Digest)
			}
			if diff := cmp.Diff([]string{fmt.Sprintf("%s.partial %d", cacheName(a.layer), cut)}, cacheFiles(t, dir)); diff != "" {
				t.Fatalf("cache after the cut (-want +got):\n%s", diff)
			}

			// A new Registry: the board rebooted between the attempts.
			r = &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir}
			got, err := readAll(t, r.Storage(), a.layer)
			if err != nil {
				t.Fatalf("second fetch: %v", err)
			}
			if !bytes.Equal(got, a.layerData) {
				t.Errorf("second fetch: %d bytes that differ from the %d pushed", len(got), len(a.layerData))
			}
			wantRanges := []string{"", fmt.Sprintf("bytes=%d-%d", cut, len(a.layerData)-1)}
			if diff := cmp.Diff(wantRanges, f.blobGets()); diff != "" {
				t.Errorf("blob GETs' Range headers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{fmt.Sprintf("%s %d", cacheName(a.layer), len(a.layerData))}, cacheFiles(t, dir)); diff != "" {
				t.Errorf("cache (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFetchStalled: a download that stops receiving is abandoned after
// StallTimeout, its partial kept, and resumed next time.
func TestFetchStalled(t *testing.T) {
	const cut = 50000
	f := &faults{cutFirstAfter: cut, hang: true}
	a := testRegistry(t, f)
	dir := t.TempDir()
	r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir, StallTimeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := readAll(t, r.Storage(), a.layer)
	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), "nothing received for 200ms") {
		t.Fatalf("stalled fetch: %v, want it truncated after nothing received for 200ms", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the stalled fetch took %v", d)
	}
	if diff := cmp.Diff([]string{fmt.Sprintf("%s.partial %d", cacheName(a.layer), cut)}, cacheFiles(t, dir)); diff != "" {
		t.Fatalf("cache after the stall (-want +got):\n%s", diff)
	}
	got, err := readAll(t, r.Storage(), a.layer)
	if err != nil || !bytes.Equal(got, a.layerData) {
		t.Fatalf("fetch after the stall: %v", err)
	}
	if diff := cmp.Diff([]string{"", fmt.Sprintf("bytes=%d-%d", cut, len(a.layerData)-1)}, f.blobGets()); diff != "" {
		t.Errorf("blob GETs' Range headers (-want +got):\n%s", diff)
	}
}

// TestFetchRefused: content that is not what the descriptor says is never
// renamed complete, and what cannot become it is not kept.
func TestFetchRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults *faults
		short  int64 // the descriptor claims this many bytes fewer than the blob has
		want   string
		is     error
	}{
		{name: "bytes differ from the digest", faults: &faults{flipByte: true}, want: "do not have that digest", is: content.ErrMismatchedDigest},
		{name: "larger than its descriptor", faults: &faults{}, short: 100, want: "more than the blob's", is: ErrTooLarge},
		{name: "larger than its descriptor, no Content-Length", faults: &faults{noLength: true}, short: 100, want: "more than its", is: ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testRegistry(t, tc.faults)
			dir := t.TempDir()
			r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir}
			desc := a.layer
			desc.Size -= tc.short
			_, err := readAll(t, r.Storage(), desc)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), desc.Digest.String()) {
				t.Fatalf("fetch: %v, want an error naming %s and %q", err, desc.Digest, tc.want)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("fetch: %v is not %v", err, tc.is)
			}
			if got := cacheFiles(t, dir); len(got) != 0 {
				t.Errorf("cache holds %q after a refused download", got)
			}
		})
	}
}

// TestFetchCached: a complete blob is read from the flash, not downloaded
// again, even by a new Registry after a reboot; one that rotted on the
// flash fails its read, is dropped, and is downloaded again.
func TestFetchCached(t *testing.T) {
	f := &faults{}
	a := testRegistry(t, f)
	dir := t.TempDir()
	for i := range 3 {
		r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir}
		for range 2 {
			got, err := readAll(t, r.Storage(), a.layer)
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			if !bytes.Equal(got, a.layerData) {
				t.Fatalf("round %d: the content differs", i)
			}
			if _, err := readAll(t, r.Storage(), a.manifest); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
	if diff := cmp.Diff([]string{""}, f.blobGets()); diff != "" {
		t.Errorf("blob GETs (-want +got):\n%s", diff)
	}
	f.mu.Lock()
	other := f.other
	f.mu.Unlock()
	if other != 1 {
		t.Errorf("%d manifest requests, want 1", other)
	}

	path := filepath.Join(dir, cacheName(a.layer))
	rotten := append([]byte(nil), a.layerData...)
	rotten[1000] ^= 1
	if err := os.WriteFile(path, rotten, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir}
	if _, err := readAll(t, r.Storage(), a.layer); !errors.Is(err, content.ErrMismatchedDigest) {
		t.Fatalf("read of a rotten cache file: %v, want content.ErrMismatchedDigest", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rotten cache file is still there: %v", err)
	}
	got, err := readAll(t, r.Storage(), a.layer)
	if err != nil || !bytes.Equal(got, a.layerData) {
		t.Fatalf("fetch after the rot: %v", err)
	}
	if diff := cmp.Diff([]string{"", ""}, f.blobGets()); diff != "" {
		t.Errorf("blob GETs (-want +got):\n%s", diff)
	}

	// A complete file of the wrong size (cut on a flash that lied about
	// its fsync) is not served: it is downloaded again.
	if err := os.WriteFile(path, a.layerData[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = readAll(t, r.Storage(), a.layer)
	if err != nil || !bytes.Equal(got, a.layerData) {
		t.Fatalf("fetch over a short cache file: %v", err)
	}
	if diff := cmp.Diff([]string{"", "", ""}, f.blobGets()); diff != "" {
		t.Errorf("blob GETs (-want +got):\n%s", diff)
	}
}

func TestPrune(t *testing.T) {
	a := testRegistry(t, &faults{})
	dir := t.TempDir()
	r := &Registry{Ref: a.ref, PlainHTTP: true, CacheDir: dir}
	for _, d := range []ocispec.Descriptor{a.manifest, a.config, a.layer} {
		if _, err := readAll(t, r.Storage(), d); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{cacheName(a.layer) + ".partial", "sha256-" + strings.Repeat("0", 64) + ".partial"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Prune(a.manifest, a.layer); err != nil {
		t.Fatal(err)
	}
	want := []string{
		cacheName(a.layer) + fmt.Sprintf(" %d", len(a.layerData)),
		cacheName(a.layer) + ".partial 1",
		cacheName(a.manifest) + fmt.Sprintf(" %d", a.manifest.Size),
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, cacheFiles(t, dir)); diff != "" {
		t.Errorf("cache after Prune (-want +got):\n%s", diff)
	}
	if err := (&Registry{CacheDir: filepath.Join(dir, "absent")}).Prune(); err != nil {
		t.Errorf("Prune of a cache not made yet: %v", err)
	}
}

func TestFetchBadDescriptor(t *testing.T) {
	r := &Registry{Ref: "127.0.0.1:1/ota/edge:v1", PlainHTTP: true, CacheDir: t.TempDir()}
	_, err := r.Storage().Fetch(context.Background(), ocispec.Descriptor{Digest: "sha256:../../etc/passwd", Size: 1})
	if err == nil || !strings.Contains(err.Error(), "sha256:../../etc/passwd") {
		t.Errorf("fetch of a bad digest: %v, want an error naming it", err)
	}
}
