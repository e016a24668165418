package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Size caps of what is read into memory while opening a bundle; layers are
// streamed and bounded by the signed statement's sizes.
const (
	MaxManifestSize = 1 << 20
	MaxEnvelopeSize = 1 << 20
)

// Bundle is a verified bundle: its statement passed the policy and its
// manifest's layers are exactly the statement's.
type Bundle struct {
	Statement *Statement
	Envelope  []byte // verbatim config blob
	Manifest  ocispec.Descriptor

	store    content.Fetcher
	manifest ocispec.Manifest
}

// Writer is where Unpack writes; trial.FS satisfies it, so a
// fault-injecting FS sees every write.
type Writer interface {
	MkdirAll(path string, perm fs.FileMode) error
	WriteFile(path string, r io.Reader, perm fs.FileMode) error // durable: written and fsynced
}

// Open fetches the manifest (at most MaxManifestSize, digest-checked), its
// config (the envelope, at most MaxEnvelopeSize), verifies the envelope
// with p, then checks that the manifest's layers are the statement's
// (digest, size, media type, order). Every refusal is a *Refusal; a fetch
// that fails for another reason (I/O, network) is a plain error.
func Open(ctx context.Context, store content.Fetcher, manifest ocispec.Descriptor, p Policy) (*Bundle, error) {
	if manifest.MediaType != ocispec.MediaTypeImageManifest {
		return nil, refuse(0, ReasonMalformed, "the bundle's root is a %q, want an OCI image manifest", manifest.MediaType)
	}
	raw, err := fetchSmall(ctx, store, manifest, MaxManifestSize, "manifest")
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, refuse(0, ReasonMalformed, "the manifest %s is not JSON: %v", manifest.Digest, err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != MediaTypeEnvelope || (m.ArtifactType != "" && m.ArtifactType != ArtifactType) {
		return nil, refuse(0, ReasonMalformed, "the manifest %s is not a podboot OTA bundle (media type %q, config %q, artifact type %q)", manifest.Digest, m.MediaType, m.Config.MediaType, m.ArtifactType)
	}
	env, err := fetchSmall(ctx, store, m.Config, MaxEnvelopeSize, "statement")
	if err != nil {
		return nil, err
	}
	st, err := p.Verify(env)
	if err != nil {
		return nil, err
	}
	if err := matchLayers(st, m.Layers); err != nil {
		return nil, err
	}
	return &Bundle{Statement: st, Envelope: env, Manifest: manifest, store: store, manifest: m}, nil
}

// matchLayers: the signature covers the statement, not the manifest, so
// the manifest's layers must be exactly the statement's.
func matchLayers(st *Statement, layers []ocispec.Descriptor) error {
	if len(layers) != len(st.Layers) {
		return refuse(st.Generation, ReasonLayerMismatch, "the manifest has %d layers and the signed statement names %d", len(layers), len(st.Layers))
	}
	for i, l := range st.Layers {
		d := layers[i]
		if d.MediaType != l.MediaType || d.Digest.String() != l.Digest || d.Size != l.Size {
			return refuse(st.Generation, ReasonLayerMismatch, "layer %d %q is %s (%d bytes, %s) in the manifest and %s (%d bytes, %s) in the signed statement",
				i, l.Name, d.Digest, d.Size, d.MediaType, l.Digest, l.Size, l.MediaType)
		}
	}
	return nil
}

// fetchSmall reads a blob of at most limit bytes, checked against desc's
// size and digest; desc.Size is never trusted beyond limit.
func fetchSmall(ctx context.Context, store content.Fetcher, desc ocispec.Descriptor, limit int64, what string) ([]byte, error) {
	if desc.Size < 0 || desc.Size > limit {
		return nil, refuse(0, ReasonMalformed, "the %s %s is %d bytes, the limit is %d", what, desc.Digest, desc.Size, limit)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, refuse(0, ReasonMalformed, "the %s's digest %q is invalid: %v", what, desc.Digest, err)
	}
	rc, err := store.Fetch(ctx, desc)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, refuse(0, ReasonTruncated, "the bundle has no %s %s", what, desc.Digest)
		}
		return nil, fmt.Errorf("fetch %s %s: %w", what, desc.Digest, err)
	}
	defer rc.Close()
	// VerifyReader reads at most desc.Size bytes, and checks that no byte
	// follows them.
	vr := content.NewVerifyReader(io.LimitReader(rc, limit+1), desc)
	buf := bytes.NewBuffer(make([]byte, 0, desc.Size))
	if _, err := buf.ReadFrom(vr); err != nil {
		return nil, fetchRefusal(0, "the "+what, desc, int64(buf.Len()), ReasonMalformed, err)
	}
	if err := vr.Verify(); err != nil {
		return nil, fetchRefusal(0, "the "+what, desc, int64(buf.Len()), ReasonMalformed, err)
	}
	return buf.Bytes(), nil
}

// fetchRefusal turns a verification error into the refusal it means; a
// blob whose bytes are not what was named is refused with mismatch
// (LayerMismatch for a layer, Malformed for the manifest and statement).
func fetchRefusal(gen uint64, what string, desc ocispec.Descriptor, got int64, mismatch string, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return refuse(gen, ReasonTruncated, "%s is truncated: %d of %d bytes", what, got, desc.Size)
	case errors.Is(err, content.ErrTrailingData):
		return refuse(gen, mismatch, "%s is longer than the %d bytes it should have", what, desc.Size)
	case errors.Is(err, content.ErrMismatchedDigest):
		return refuse(gen, mismatch, "%s does not match its digest %s", what, desc.Digest)
	}
	return fmt.Errorf("read %s %s: %w", what, desc.Digest, err)
}

// Unpack writes dir/statement.json, dir/pods/<files of the pods layer> and
// dir/images/<Name> for every image layer. Every blob is checked against
// the statement's digest and size while it streams; a mismatch is a
// *Refusal (LayerMismatch, Truncated) found only at the blob's end, so on
// any error dir holds partial content and the caller discards it
// (trial's Stage does: it unpacks into gen/<N>.tmp).
func (b *Bundle) Unpack(ctx context.Context, w Writer, dir string) error {
	gen := b.Statement.Generation
	pods, images := filepath.Join(dir, "pods"), filepath.Join(dir, "images")
	for _, d := range []string{dir, pods, images} {
		if err := w.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("unpack bundle generation %d: %w", gen, err)
		}
	}
	if err := w.WriteFile(filepath.Join(dir, "statement.json"), bytes.NewReader(b.Envelope), 0o644); err != nil {
		return fmt.Errorf("unpack bundle generation %d: %w", gen, err)
	}
	for _, l := range b.Statement.Layers {
		var err error
		if l.MediaType == MediaTypePods {
			err = b.unpackLayer(ctx, l, func(r *blobReader) error { return unpackPods(w, pods, r) })
		} else {
			path := filepath.Join(images, l.Name)
			err = b.unpackLayer(ctx, l, func(r *blobReader) error {
				if err := w.WriteFile(path, r, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", path, err)
				}
				return nil
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unpackLayer fetches l and runs write over its verifying reader, then
// makes sure the whole blob was read and verified.
func (b *Bundle) unpackLayer(ctx context.Context, l Layer, write func(*blobReader) error) error {
	gen := b.Statement.Generation
	desc := ocispec.Descriptor{MediaType: l.MediaType, Digest: digest.Digest(l.Digest), Size: l.Size}
	rc, err := b.store.Fetch(ctx, desc)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return refuse(gen, ReasonTruncated, "the bundle has no layer %q (%s)", l.Name, l.Digest)
		}
		return fmt.Errorf("unpack bundle generation %d: fetch layer %q: %w", gen, l.Name, err)
	}
	defer rc.Close()
	r := &blobReader{ctx: ctx, gen: gen, layer: l, desc: desc, vr: content.NewVerifyReader(io.LimitReader(rc, l.Size+1), desc)}
	werr := write(r)
	if r.err != nil { // the refusal, however the writer wrapped it
		return r.err
	}
	if werr != nil {
		return fmt.Errorf("unpack bundle generation %d: layer %q: %w", gen, l.Name, werr)
	}
	if !r.verified {
		// The writer stopped before the end (a tar's padding): read the
		// rest so the digest covers every byte.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
	return nil
}

// blobReader is a layer's bytes, verified against the statement at EOF:
// instead of io.EOF it returns the refusal, so a writer never completes a
// file from a blob that did not verify.
type blobReader struct {
	ctx      context.Context
	gen      uint64
	layer    Layer
	desc     ocispec.Descriptor
	vr       *content.VerifyReader
	n        int64
	verified bool
	err      error
}

func (r *blobReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.verified {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	n, err := r.vr.Read(p)
	r.n += int64(n)
	if err == io.EOF {
		if verr := r.vr.Verify(); verr != nil {
			r.err = fetchRefusal(r.gen, fmt.Sprintf("layer %q", r.layer.Name), r.desc, r.n, ReasonLayerMismatch, verr)
			return n, r.err
		}
		r.verified = true
		return n, io.EOF
	}
	if err != nil {
		r.err = fetchRefusal(r.gen, fmt.Sprintf("layer %q", r.layer.Name), r.desc, r.n, ReasonLayerMismatch, err)
		return n, r.err
	}
	return n, nil
}

// unpackPods writes the pods tar's files into dir: flat, regular files with
// manifest names only; anything else (a path, a link, a device) is refused.
func unpackPods(w Writer, dir string, r *blobReader) error {
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if r.err != nil {
				return r.err
			}
			return refuse(r.gen, ReasonMalformed, "the pods layer is not a valid tar: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return refuse(r.gen, ReasonMalformed, "the pods layer's entry %q is not a regular file (tar type %q)", hdr.Name, string(hdr.Typeflag))
		}
		if !validName(hdr.Name) || !isManifestName(hdr.Name) {
			return refuse(r.gen, ReasonMalformed, "the pods layer's entry %q is not a manifest file name ([A-Za-z0-9._-] ending in .yaml, .yml or .json, no directory)", hdr.Name)
		}
		if seen[hdr.Name] {
			return refuse(r.gen, ReasonMalformed, "the pods layer holds %q twice", hdr.Name)
		}
		seen[hdr.Name] = true
		path := filepath.Join(dir, hdr.Name)
		if err := w.WriteFile(path, tr, 0o644); err != nil {
			if r.err != nil {
				return r.err
			}
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
}
