package bundle

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/mod/semver"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"

	"github.com/podboot/podboot/internal/version"
)

// BuildOptions is what `podctl ota build` passes to Build.
type BuildOptions struct {
	Keys            []ed25519.PrivateKey // at least one
	Generation      uint64               // > 0
	PodsDir         string               // required; must hold at least one manifest file
	ImagesDir       string               // optional: *.tar archives
	Fleet, Channel  string
	MinAgentVersion string // default version.Version
	NextKeys        []string
	NextThreshold   int
	IssuedAt        time.Time     // default time.Now()
	ExpiresIn       time.Duration // 0 = never
}

// epoch is every tar entry's mtime: a build must not depend on when the
// files were touched.
var epoch = time.Unix(0, 0).UTC()

// Build writes a bundle to out as an OCI image layout tar (oci-layout,
// index.json with one manifest, blobs/sha256/...). Equal inputs and IssuedAt
// give byte-identical output. Image archives are streamed, never held in
// memory; the layout is staged in a temporary directory.
func Build(ctx context.Context, opts BuildOptions, out io.Writer) error {
	if err := opts.check(); err != nil {
		return err
	}
	issued := opts.IssuedAt
	if issued.IsZero() {
		issued = time.Now()
	}
	issued = issued.UTC()
	minAgent := opts.MinAgentVersion
	if minAgent == "" {
		minAgent = version.Version
	}

	tmp, err := os.MkdirTemp("", "podboot-bundle-")
	if err != nil {
		return fmt.Errorf("build bundle generation %d: %w", opts.Generation, err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "layout")
	store, err := oci.NewWithContext(ctx, root)
	if err != nil {
		return fmt.Errorf("build bundle generation %d: create OCI layout: %w", opts.Generation, err)
	}

	podsTar := filepath.Join(tmp, PodsLayerName)
	if err := writePodsTar(opts.PodsDir, podsTar); err != nil {
		return err
	}
	podsDesc, err := pushFile(ctx, store, podsTar, MediaTypePods, PodsLayerName)
	if err != nil {
		return err
	}
	layers := []ocispec.Descriptor{podsDesc}
	if opts.ImagesDir != "" {
		names, err := listFiles(opts.ImagesDir, func(n string) bool { return strings.HasSuffix(n, ".tar") })
		if err != nil {
			return fmt.Errorf("list image archives: %w", err)
		}
		for _, n := range names {
			d, err := pushFile(ctx, store, filepath.Join(opts.ImagesDir, n), MediaTypeImage, n)
			if err != nil {
				return err
			}
			layers = append(layers, d)
		}
	}

	st := &Statement{
		Fleet:           opts.Fleet,
		Channel:         opts.Channel,
		Generation:      opts.Generation,
		MinAgentVersion: minAgent,
		IssuedAt:        issued,
		NextKeys:        opts.NextKeys,
		NextThreshold:   opts.NextThreshold,
	}
	if opts.ExpiresIn > 0 {
		exp := issued.Add(opts.ExpiresIn)
		st.Expires = &exp
	}
	for _, d := range layers {
		st.Layers = append(st.Layers, Layer{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, Name: d.Annotations[ocispec.AnnotationTitle]})
	}
	if err := checkLayers(st.Layers); err != nil {
		return fmt.Errorf("build bundle generation %d: %w", opts.Generation, err)
	}
	env, err := Sign(st, opts.Keys...)
	if err != nil {
		return err
	}
	configDesc := ocispec.Descriptor{MediaType: MediaTypeEnvelope, Digest: digest.FromBytes(env), Size: int64(len(env))}
	if err := store.Push(ctx, configDesc, strings.NewReader(string(env))); err != nil {
		return fmt.Errorf("build bundle generation %d: store the statement: %w", opts.Generation, err)
	}
	if _, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
		Layers:              layers,
		ConfigDescriptor:    &configDesc,
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: issued.Format(time.RFC3339)},
	}); err != nil {
		return fmt.Errorf("build bundle generation %d: pack the manifest: %w", opts.Generation, err)
	}
	if err := writeLayoutTar(root, out); err != nil {
		return fmt.Errorf("build bundle generation %d: %w", opts.Generation, err)
	}
	return nil
}

func (o BuildOptions) check() error {
	if len(o.Keys) == 0 {
		return errors.New("build bundle: no signing key")
	}
	if o.Generation == 0 {
		return errors.New("build bundle: the generation must be 1 or more")
	}
	if o.PodsDir == "" {
		return fmt.Errorf("build bundle generation %d: no pods directory", o.Generation)
	}
	if o.MinAgentVersion != "" && !semver.IsValid(o.MinAgentVersion) {
		return fmt.Errorf("build bundle generation %d: minimum agent version %q is not a semantic version like v0.13.0", o.Generation, o.MinAgentVersion)
	}
	for _, k := range o.NextKeys {
		if _, err := ParsePublicKey(k); err != nil {
			return fmt.Errorf("build bundle generation %d: next keys: %w", o.Generation, err)
		}
	}
	if o.NextThreshold < 0 || o.NextThreshold > len(o.NextKeys) {
		return fmt.Errorf("build bundle generation %d: next threshold %d is not between 0 and the %d next keys", o.Generation, o.NextThreshold, len(o.NextKeys))
	}
	if o.ExpiresIn < 0 {
		return fmt.Errorf("build bundle generation %d: negative expiry %s", o.Generation, o.ExpiresIn)
	}
	return nil
}

func isManifestName(n string) bool {
	return strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json")
}

// listFiles returns the sorted names in dir that match, each a regular file
// (after symlinks) with a name a board accepts.
func listFiles(dir string, match func(string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries { // os.ReadDir sorts by name
		if !match(e.Name()) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", filepath.Join(dir, e.Name()))
		}
		if !validName(e.Name()) {
			return nil, fmt.Errorf("%s: a bundle's file names are [A-Za-z0-9._-] and do not start with a dot", filepath.Join(dir, e.Name()))
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// writePodsTar writes the pods layer: the manifests of dir, sorted, with
// zero times, owners and mode 0644, so equal manifests give equal digests.
func writePodsTar(dir, path string) error {
	names, err := listFiles(dir, isManifestName)
	if err != nil {
		return fmt.Errorf("list pod manifests: %w", err)
	}
	if len(names) == 0 {
		return fmt.Errorf("list pod manifests: %s holds no *.yaml, *.yml or *.json file", dir)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create pods layer: %w", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, n := range names {
		if err := addFile(tw, n, filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("write pods layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write pods layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write pods layer: %w", err)
	}
	return nil
}

// addFile streams the file at src into tw as name with a deterministic header.
func addFile(tw *tar.Writer, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: fi.Size(), Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	} else if n != fi.Size() {
		return fmt.Errorf("copy %s: it changed size while being read (%d, then %d bytes)", src, fi.Size(), n)
	}
	return nil
}

// pushFile stores the file at path as a blob: one pass to digest it, one to
// copy it, so an archive of hundreds of MB never sits in memory.
func pushFile(ctx context.Context, store *oci.Store, path, mediaType, title string) (ocispec.Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("add layer %q: %w", title, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("digest layer %q: %w", title, err)
	}
	desc := ocispec.Descriptor{
		MediaType:   mediaType,
		Digest:      digest.NewDigest(digest.SHA256, h),
		Size:        size,
		Annotations: map[string]string{ocispec.AnnotationTitle: title},
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("add layer %q: %w", title, err)
	}
	if err := store.Push(ctx, desc, f); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("store layer %q: %w", title, err)
	}
	return desc, nil
}

// writeLayoutTar writes root's OCI layout to out: oci-layout, index.json,
// then the blobs sorted by digest, with deterministic headers. The store's
// ingest directory is left out.
func writeLayoutTar(root string, out io.Writer) error {
	tw := tar.NewWriter(out)
	for _, n := range []string{ocispec.ImageLayoutFile, ocispec.ImageIndexFile} {
		if err := addFile(tw, n, filepath.Join(root, n)); err != nil {
			return fmt.Errorf("write layout tar: %w", err)
		}
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("write layout tar: %w", err)
		}
	}
	blobs := filepath.Join(root, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("write layout tar: %w", err)
	}
	for _, e := range entries {
		if err := addFile(tw, "blobs/sha256/"+e.Name(), filepath.Join(blobs, e.Name())); err != nil {
			return fmt.Errorf("write layout tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write layout tar: %w", err)
	}
	return nil
}
