package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
)

// LatestTag is the ref.name annotation that picks a layout's manifest when
// its index holds several.
const LatestTag = "latest"

// maxIndexSize bounds the index.json read from a stick: whoever wrote the
// stick is not trusted to make it small.
const maxIndexSize = 1 << 20

// Layout is an OTA source in an OCI image layout directory, as
// `podctl ota build` makes one (untarred) or `oras copy --to-oci-layout`
// writes one: typically a USB stick mounted by the board. Nothing is
// copied to the flash before the bundle is verified; blobs are read
// straight from the stick, each checked against its digest as it is read.
type Layout struct{ Dir string }

// Resolve returns the layout's manifest: the only one of its index.json,
// or, when there are several, the one whose
// org.opencontainers.image.ref.name is "latest". A missing directory (the
// stick is not there) is an error that wraps fs.ErrNotExist.
func (l *Layout) Resolve(ctx context.Context) (ocispec.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: %w", l.Dir, err)
	}
	var layout ocispec.ImageLayout
	if err := readJSON(filepath.Join(l.Dir, ocispec.ImageLayoutFile), &layout); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: %w", l.Dir, err)
	}
	if layout.Version != ocispec.ImageLayoutVersion {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: imageLayoutVersion %q, not %q", l.Dir, layout.Version, ocispec.ImageLayoutVersion)
	}
	var index ocispec.Index
	if err := readJSON(filepath.Join(l.Dir, ocispec.ImageIndexFile), &index); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: %w", l.Dir, err)
	}
	desc, err := pickManifest(index.Manifests)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: %w", l.Dir, err)
	}
	if !manifestMediaTypes[desc.MediaType] || desc.Size <= 0 || desc.Size > MaxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: %s is a %q of %d bytes, not a manifest", l.Dir, desc.Digest, desc.MediaType, desc.Size)
	}
	if err := desc.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve the OCI layout %s: manifest %q: %w", l.Dir, desc.Digest, err)
	}
	// Only what the content needs: annotations and platform of the index
	// entry are the stick's say, not the bundle's.
	return ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: desc.ArtifactType}, nil
}

func pickManifest(manifests []ocispec.Descriptor) (ocispec.Descriptor, error) {
	switch len(manifests) {
	case 0:
		return ocispec.Descriptor{}, errors.New("index.json lists no manifest")
	case 1:
		return manifests[0], nil
	}
	var latest []ocispec.Descriptor
	for _, m := range manifests {
		if m.Annotations[ocispec.AnnotationRefName] == LatestTag {
			latest = append(latest, m)
		}
	}
	if len(latest) != 1 {
		return ocispec.Descriptor{}, fmt.Errorf("index.json lists %d manifests and %d of them are tagged %q (%s): want one", len(manifests), len(latest), LatestTag, ocispec.AnnotationRefName)
	}
	return latest[0], nil
}

func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxIndexSize {
		return fmt.Errorf("read %s: more than %d bytes", path, maxIndexSize)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// Storage reads the layout's blobs through oras-go's read-only OCI store,
// each checked against its descriptor's size and digest as it is read.
func (l *Layout) Storage() content.Fetcher {
	return layoutFetcher{store: oci.NewStorageFromFS(os.DirFS(l.Dir)), dir: l.Dir}
}

type layoutFetcher struct {
	store *oci.ReadOnlyStorage
	dir   string
}

func (f layoutFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := f.store.Fetch(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("fetch %s from the OCI layout %s: %w", desc.Digest, f.dir, err)
	}
	return newVerifiedReader(rc, desc, "blob on the OCI layout "+f.dir, nil), nil
}
