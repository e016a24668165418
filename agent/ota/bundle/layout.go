package bundle

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
)

// maxIndexSize caps index.json and oci-layout.
const maxIndexSize = 1 << 20

// OpenTar opens an OCI layout tar (what Build writes and the API receives).
// Its index.json must hold exactly one manifest. The tar is scanned once
// for its entries' offsets; a Fetch reads the entry from the file, so
// nothing but index.json is read into memory. oci.NewFromTar is not used:
// it reads every manifest of the index eagerly, without a size limit.
func OpenTar(ctx context.Context, path string) (content.ReadOnlyStorage, ocispec.Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	s := &tarStorage{path: path, entries: map[string]tarEntry{}}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, ocispec.Descriptor{}, refuse(0, ReasonMalformed, "%s is not a tar: %v", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		// tar.Reader reads no further than the header, so the file's
		// offset now is where the entry's data starts.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, ocispec.Descriptor{}, fmt.Errorf("open bundle %s: %w", path, err)
		}
		s.entries[cleanName(hdr.Name)] = tarEntry{off: off, size: hdr.Size}
	}
	desc, err := readIndex(s, path, false)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	return s, desc, nil
}

// OpenLayout opens an OCI layout directory (a USB stick): its index.json
// holds exactly one manifest, or the one tagged "latest".
func OpenLayout(ctx context.Context, dir string) (content.ReadOnlyStorage, ocispec.Descriptor, error) {
	fsys := os.DirFS(dir)
	desc, err := readIndex(fsys, dir, true)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	return oci.NewStorageFromFS(fsys), desc, nil
}

func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// readIndex checks oci-layout and picks the bundle's manifest from index.json.
func readIndex(fsys fs.FS, where string, latest bool) (ocispec.Descriptor, error) {
	var layout ocispec.ImageLayout
	if err := readJSON(fsys, ocispec.ImageLayoutFile, &layout); err != nil {
		return ocispec.Descriptor{}, refuse(0, ReasonMalformed, "%s is not an OCI image layout: %v", where, err)
	}
	if layout.Version != ocispec.ImageLayoutVersion {
		return ocispec.Descriptor{}, refuse(0, ReasonMalformed, "%s is an OCI image layout of version %q, want %q", where, layout.Version, ocispec.ImageLayoutVersion)
	}
	var index ocispec.Index
	if err := readJSON(fsys, ocispec.ImageIndexFile, &index); err != nil {
		return ocispec.Descriptor{}, refuse(0, ReasonMalformed, "%s is not an OCI image layout: %v", where, err)
	}
	if len(index.Manifests) == 1 {
		return index.Manifests[0], nil
	}
	if latest {
		for _, d := range index.Manifests {
			if d.Annotations[ocispec.AnnotationRefName] == "latest" {
				return d, nil
			}
		}
		return ocispec.Descriptor{}, refuse(0, ReasonMalformed, "%s's index.json holds %d manifests and none is tagged \"latest\"", where, len(index.Manifests))
	}
	return ocispec.Descriptor{}, refuse(0, ReasonMalformed, "%s's index.json holds %d manifests, want exactly one", where, len(index.Manifests))
}

func readJSON(fsys fs.FS, name string, v any) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxIndexSize {
		return fmt.Errorf("%s is larger than %d bytes", name, maxIndexSize)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", name, err)
	}
	return nil
}

type tarEntry struct{ off, size int64 }

// tarStorage serves blobs from the entries of an OCI layout tar; each Fetch
// opens the file, so no descriptor stays open between fetches.
type tarStorage struct {
	path    string
	entries map[string]tarEntry
}

func (s *tarStorage) Open(name string) (fs.File, error) {
	e, ok := s.entries[cleanName(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	return &tarFile{f: f, r: io.NewSectionReader(f, e.off, e.size)}, nil
}

func (s *tarStorage) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, errdef.ErrInvalidDigest)
	}
	f, err := s.Open(blobName(desc))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fetch %s from %s: %w", desc.Digest, s.path, errdef.ErrNotFound)
		}
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	return f, nil
}

func (s *tarStorage) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := desc.Digest.Validate(); err != nil {
		return false, fmt.Errorf("exists %s: %w", desc.Digest, errdef.ErrInvalidDigest)
	}
	_, ok := s.entries[blobName(desc)]
	return ok, nil
}

func blobName(desc ocispec.Descriptor) string {
	return path.Join(ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded())
}

// tarFile is one entry of the tar: reads stay inside it. The *os.File is
// not embedded: its Seek, ReadAt and WriteTo would escape the entry.
type tarFile struct {
	f *os.File
	r *io.SectionReader
}

func (f *tarFile) Close() error { return f.f.Close() }

func (f *tarFile) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *tarFile) Stat() (fs.FileInfo, error) { return tarFileInfo{f.r.Size()}, nil }

type tarFileInfo struct{ size int64 }

func (i tarFileInfo) Name() string       { return "" }
func (i tarFileInfo) Size() int64        { return i.size }
func (i tarFileInfo) Mode() fs.FileMode  { return 0o444 }
func (i tarFileInfo) ModTime() time.Time { return time.Time{} }
func (i tarFileInfo) IsDir() bool        { return false }
func (i tarFileInfo) Sys() any           { return nil }
