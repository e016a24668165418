package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/podboot/podboot/internal/atomicfile"
	"github.com/podboot/podboot/internal/version"
)

// Limits and timeouts of the registry source.
const (
	// ResolveTimeout bounds one Resolve when ctx has no earlier deadline:
	// a registry that accepts the connection and never answers must not
	// stall the poll loop.
	ResolveTimeout = 30 * time.Second
	// DefaultStallTimeout is how long a download may receive nothing
	// before it is abandoned (its partial kept for the next attempt).
	DefaultStallTimeout = time.Minute
	// MaxManifestSize is the largest manifest Resolve accepts and Fetch
	// reads whole into memory (bundle.MaxManifestSize is smaller).
	MaxManifestSize = 4 << 20
)

// Errors a download wraps, for the controller to tell them apart.
var (
	// ErrTruncated: the body ended early; the partial is kept and the
	// next Fetch resumes after it.
	ErrTruncated = errors.New("truncated")
	// ErrTooLarge: the registry sends more than the descriptor's size.
	ErrTooLarge = errors.New("larger than its descriptor")
)

// Manifest media types: fetched through the registry's manifests endpoint,
// everything else through its blobs endpoint.
var manifestMediaTypes = map[string]bool{
	ocispec.MediaTypeImageManifest:                              true,
	ocispec.MediaTypeImageIndex:                                 true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.oci.artifact.manifest.v1+json":             true,
}

// Registry is an OTA source in an OCI registry: a tag, resolved on every
// poll, whose manifest and blobs are downloaded into CacheDir. It talks to
// the registry anonymously (a public or network-restricted repository;
// the bundle's signatures, not the registry, are what the board trusts).
//
// A Registry must not be copied after first use.
type Registry struct {
	Ref       string       // HOST[:PORT]/REPO:TAG (device.yaml ota.source without oci://)
	PlainHTTP bool         // http:// instead of https://
	CacheDir  string       // <flash>/ota/downloads
	Client    *http.Client // nil = a default with connect, TLS and response-header timeouts
	// StallTimeout abandons a download that receives nothing for this
	// long; 0 = DefaultStallTimeout.
	StallTimeout time.Duration

	once    sync.Once
	repo    *remote.Repository
	repoErr error
	// mu serialises downloads: two fetches of one blob must not write
	// one partial file, and a board's link is the bottleneck anyway.
	mu sync.Mutex
}

// Storage is the registry as a content.Fetcher backed by the cache.
func (r *Registry) Storage() content.Fetcher { return cacheFetcher{r} }

type cacheFetcher struct{ r *Registry }

// Fetch returns desc's content from CacheDir, downloading it first when it
// is not there complete. See Registry.fetch.
func (c cacheFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return c.r.fetch(ctx, desc)
}

// repository is the oras-go remote for Ref, made once so its token cache
// lives as long as the Registry.
func (r *Registry) repository() (*remote.Repository, error) {
	r.once.Do(func() {
		repo, err := remote.NewRepository(r.Ref)
		if err != nil {
			r.repoErr = fmt.Errorf("ota source %q: %w", r.Ref, err)
			return
		}
		if repo.Reference.Reference == "" {
			r.repoErr = fmt.Errorf("ota source %q: no tag (HOST/REPO:TAG)", r.Ref)
			return
		}
		repo.PlainHTTP = r.PlainHTTP
		repo.Client = &auth.Client{
			Client: r.httpClient(),
			Header: http.Header{"User-Agent": {"podboot/" + version.Version}},
			Cache:  auth.NewCache(), // anonymous bearer tokens, no credentials
		}
		r.repo = repo
	})
	return r.repo, r.repoErr
}

func (r *Registry) httpClient() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	// No overall Timeout: a large image layer on a slow link takes as long
	// as it takes; a stalled one is cut by StallTimeout instead.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// Resolve returns the manifest descriptor Ref's tag names now. It is asked
// afresh on every poll, so a board that was offline jumps straight to the
// newest generation and never walks the ones it missed.
func (r *Registry) Resolve(ctx context.Context) (ocispec.Descriptor, error) {
	repo, err := r.repository()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	desc, err := repo.Resolve(ctx, repo.Reference.Reference)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", r.Ref, err)
	}
	if !manifestMediaTypes[desc.MediaType] {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %s is a %q, not a manifest", r.Ref, desc.Digest, desc.MediaType)
	}
	if desc.Size <= 0 || desc.Size > MaxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: manifest %s has size %d, not 1 to %d bytes", r.Ref, desc.Digest, desc.Size, MaxManifestSize)
	}
	return desc, nil
}

// cachePath is CacheDir/<algo>-<hex> for a validated digest.
func (r *Registry) cachePath(desc ocispec.Descriptor) (string, error) {
	if err := desc.Digest.Validate(); err != nil {
		return "", fmt.Errorf("blob %q: %w", desc.Digest, err)
	}
	if desc.Size < 0 {
		return "", fmt.Errorf("blob %s: negative size %d", desc.Digest, desc.Size)
	}
	return filepath.Join(r.CacheDir, desc.Digest.Algorithm().String()+"-"+desc.Digest.Encoded()), nil
}

// fetch opens desc's complete cache file, downloading it first if needed.
// What it returns is checked against desc once more as it is read: the
// flash may have rotted since the download, and a file that no longer
// matches is removed so the next poll downloads it again.
func (r *Registry) fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	path, err := r.cachePath(desc)
	if err != nil {
		return nil, err
	}
	f, err := r.openComplete(path, desc)
	if errors.Is(err, fs.ErrNotExist) {
		if err := r.download(ctx, desc, path); err != nil {
			return nil, err
		}
		f, err = r.openComplete(path, desc)
	}
	if err != nil {
		return nil, err
	}
	return newVerifiedReader(f, desc, "cached blob", func() { os.Remove(path) }), nil
}

// openComplete opens a complete cache file; one of the wrong size (a
// descriptor that disagrees with the digest's own size cannot match) is
// removed and reported as absent.
func (r *Registry) openComplete(path string, desc ocispec.Descriptor) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat cached blob %s: %w", desc.Digest, err)
	}
	if st.Size() != desc.Size {
		f.Close()
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove cached blob %s of %d bytes, not %d: %w", desc.Digest, st.Size(), desc.Size, err)
		}
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// download makes path, complete and verified, from the registry.
func (r *Registry) download(ctx context.Context, desc ocispec.Descriptor, path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return nil // another fetch finished it while this one waited
	}
	repo, err := r.repository()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.CacheDir, 0o755); err != nil {
		return fmt.Errorf("download %s: %w", desc.Digest, err)
	}
	if manifestMediaTypes[desc.MediaType] {
		return r.downloadManifest(ctx, repo, desc, path)
	}
	return r.downloadBlob(ctx, repo, desc, path)
}

// downloadManifest fetches a manifest whole (it is small; the registry's
// manifests endpoint has no use for ranges) and writes it atomically.
func (r *Registry) downloadManifest(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, path string) error {
	if desc.Size > MaxManifestSize {
		return fmt.Errorf("download manifest %s: %d bytes is more than the %d a manifest may have", desc.Digest, desc.Size, MaxManifestSize)
	}
	rc, err := repo.Manifests().Fetch(ctx, desc)
	if err != nil {
		return fmt.Errorf("download manifest %s from %s: %w", desc.Digest, r.Ref, err)
	}
	defer rc.Close()
	data, err := content.ReadAll(rc, desc)
	if err != nil {
		return fmt.Errorf("download manifest %s from %s: %w", desc.Digest, r.Ref, err)
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("download manifest %s: %w", desc.Digest, err)
	}
	return nil
}

// blobURL is the registry's /v2/<repo>/blobs/<digest>, as oras-go builds it.
func (r *Registry) blobURL(repo *remote.Repository, desc ocispec.Descriptor) string {
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	ref := repo.Reference
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, ref.Host(), ref.Repository, desc.Digest)
}

func (r *Registry) stallTimeout() time.Duration {
	if r.StallTimeout > 0 {
		return r.StallTimeout
	}
	return DefaultStallTimeout
}

// downloadBlob fills path.partial from the registry, resuming after the
// bytes it already holds, reads at most desc.Size bytes in all, checks the
// digest and renames the partial complete. oras-go's blob store has no
// resume (its Seek first starts a whole GET), so the GET is made here,
// through the repository's client (its anonymous token handling).
func (r *Registry) downloadBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, path string) (err error) {
	partial := path + ".partial"
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download blob %s: %w", desc.Digest, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if st, serr := os.Stat(partial); err != nil && serr == nil && st.Size() == 0 {
			os.Remove(partial) // nothing to resume: leave no litter
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("download blob %s: %w", desc.Digest, err)
	}
	have := st.Size()
	restart := func() error {
		have = 0
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("download blob %s: restart %s: %w", desc.Digest, partial, err)
		}
		_, err := f.Seek(0, io.SeekStart)
		return err
	}
	if have > desc.Size {
		if err := restart(); err != nil {
			return err
		}
	}
	// The partial's bytes are hashed first: the digest is of the whole.
	hash := desc.Digest.Verifier()
	if have > 0 {
		if _, err := io.CopyN(hash, f, have); err != nil {
			return fmt.Errorf("download blob %s: read %s: %w", desc.Digest, partial, err)
		}
	}
	if have < desc.Size {
		body, from, err := r.get(ctx, repo, desc, have)
		if err != nil {
			return err
		}
		defer body.Close()
		if from != have { // the registry ignored the range: start over
			if err := restart(); err != nil {
				return err
			}
			hash = desc.Digest.Verifier()
		}
		want := desc.Size - have
		n, err := io.Copy(io.MultiWriter(f, hash), io.LimitReader(body, want))
		if n < want {
			// Keep what came, durably, for the next attempt's Range.
			if serr := f.Sync(); serr != nil {
				return fmt.Errorf("download blob %s: sync %s: %w", desc.Digest, partial, serr)
			}
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("download blob %s from %s: %w at %d of %d bytes (kept for resuming): %w", desc.Digest, r.Ref, ErrTruncated, have+n, desc.Size, err)
		}
		if extra, _ := body.Read(make([]byte, 1)); extra > 0 {
			r.discard(f, partial)
			f = nil
			return fmt.Errorf("download blob %s from %s: %w: the registry sent more than its %d bytes", desc.Digest, r.Ref, ErrTooLarge, desc.Size)
		}
	}
	if !hash.Verified() {
		r.discard(f, partial)
		f = nil
		return fmt.Errorf("download blob %s from %s: its %d bytes do not have that digest (%w)", desc.Digest, r.Ref, desc.Size, content.ErrMismatchedDigest)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("download blob %s: sync %s: %w", desc.Digest, partial, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("download blob %s: close %s: %w", desc.Digest, partial, err)
	}
	if err := os.Rename(partial, path); err != nil {
		return fmt.Errorf("download blob %s: %w", desc.Digest, err)
	}
	if err := syncDir(r.CacheDir); err != nil {
		return fmt.Errorf("download blob %s: %w", desc.Digest, err)
	}
	return nil
}

// discard closes and removes a partial that can never become desc.
func (r *Registry) discard(f *os.File, partial string) {
	f.Close()
	os.Remove(partial)
}

// get GETs desc's bytes from offset have onward. It returns the body, cut
// off when nothing arrives for StallTimeout, and the offset the body
// starts at: have when the registry honoured the range, 0 when it sent
// the whole blob (200, or 416 for a range it would not serve).
func (r *Registry) get(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, have int64) (io.ReadCloser, int64, error) {
	ctx = auth.AppendRepositoryScope(ctx, repo.Reference, auth.ActionPull)
	ctx, cancel := context.WithCancelCause(ctx)
	stall := r.stallTimeout()
	errStalled := fmt.Errorf("nothing received for %s", stall)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	fail := func(err error) (io.ReadCloser, int64, error) {
		timer.Stop()
		cancel(nil)
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = fmt.Errorf("%w: %w", err, cause)
		}
		return nil, 0, fmt.Errorf("download blob %s from %s: %w", desc.Digest, r.Ref, err)
	}
	url := r.blobURL(repo, desc)
	do := func(from int64) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if from > 0 {
			// The closed form: go-containerregistry's registry, like the
			// distribution spec's text, understands only bytes=N-M.
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, desc.Size-1))
		}
		return repo.Client.Do(req)
	}
	resp, err := do(have)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0 {
		resp.Body.Close()
		have = 0
		if resp, err = do(0); err != nil {
			return fail(err)
		}
	}
	from := int64(0)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusPartialContent:
		if have == 0 || !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", have)) {
			resp.Body.Close()
			return fail(fmt.Errorf("asked for bytes %d- and got Content-Range %q", have, resp.Header.Get("Content-Range")))
		}
		from = have
	case http.StatusNotFound:
		resp.Body.Close()
		return fail(fmt.Errorf("%s %s: not found", resp.Request.Method, resp.Request.URL))
	default:
		resp.Body.Close()
		return fail(fmt.Errorf("%s %s: %s", resp.Request.Method, resp.Request.URL, resp.Status))
	}
	if want := desc.Size - from; resp.ContentLength > want {
		resp.Body.Close()
		return fail(fmt.Errorf("%w: the registry sends %d bytes from offset %d, more than the blob's %d", ErrTooLarge, resp.ContentLength, from, desc.Size))
	}
	return &stallReader{body: resp.Body, timer: timer, stall: stall, cancel: cancel, ctx: ctx, errStalled: errStalled}, from, nil
}

// stallReader re-arms the stall timer on every read that brings bytes.
type stallReader struct {
	body       io.ReadCloser
	timer      *time.Timer
	stall      time.Duration
	cancel     context.CancelCauseFunc
	ctx        context.Context
	errStalled error
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	if n > 0 {
		s.timer.Reset(s.stall)
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(s.ctx), s.errStalled) {
		err = fmt.Errorf("%w: %w", err, s.errStalled)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.body.Close()
	s.cancel(nil)
	return err
}

// Prune removes every cache file, complete or partial, that is not one of
// keep's blobs: what the controller still needs is the bundle it has not
// finished with; everything else is flash space.
func (r *Registry) Prune(keep ...ocispec.Descriptor) error {
	kept := make(map[string]bool, 2*len(keep))
	for _, d := range keep {
		if p, err := r.cachePath(d); err == nil {
			name := filepath.Base(p)
			kept[name], kept[name+".partial"] = true, true
		}
	}
	entries, err := os.ReadDir(r.CacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("prune the ota download cache: %w", err)
	}
	var errs []error
	removed := false
	for _, e := range entries {
		if kept[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.CacheDir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("prune the ota download cache: %w", err))
			continue
		}
		removed = true
	}
	if removed {
		if err := syncDir(r.CacheDir); err != nil {
			errs = append(errs, fmt.Errorf("prune the ota download cache: %w", err))
		}
	}
	return errors.Join(errs...)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
