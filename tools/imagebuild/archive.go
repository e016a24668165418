package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotations that name an image in an OCI archive, as docker save writes
// them: containerd's import reads the first, other tools the second.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// WriteDockerArchive writes the images, keyed by tag, as one docker archive
// (docker save's format: manifest.json, configs and layers), loadable by
// docker load, ctr import and containerd's client.Import. Entries are sorted
// so the same images give the same bytes.
func WriteDockerArchive(path string, imgs map[string]v1.Image) error {
	if err := writeArchive(path, imgs, dockerArchive); err != nil {
		return fmt.Errorf("write docker archive %q: %w", path, err)
	}
	return nil
}

// WriteOCIArchive writes the images, keyed by tag, as a tar of an OCI image
// layout whose index names each image with the annotations docker save uses.
func WriteOCIArchive(path string, imgs map[string]v1.Image) error {
	if err := writeArchive(path, imgs, ociArchive); err != nil {
		return fmt.Errorf("write OCI archive %q: %w", path, err)
	}
	return nil
}

// taggedImage is an image with its normalized name.
type taggedImage struct {
	named reference.Named // with a tag
	img   v1.Image
}

func writeArchive(path string, imgs map[string]v1.Image, write func(*archiveWriter, []taggedImage) error) error {
	if len(imgs) == 0 {
		return fmt.Errorf("no images")
	}
	tagged := make([]taggedImage, 0, len(imgs))
	seen := map[string]string{}
	for tag, img := range imgs {
		named, err := NormalizeTag(tag)
		if err != nil {
			return err
		}
		if prev, ok := seen[named.String()]; ok {
			return fmt.Errorf("tags %q and %q name the same image %q", prev, tag, named)
		}
		seen[named.String()] = tag
		tagged = append(tagged, taggedImage{named: named, img: img})
	}
	sort.Slice(tagged, func(i, j int) bool { return tagged[i].named.String() < tagged[j].named.String() })

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	aw := &archiveWriter{tw: tar.NewWriter(tmp), written: map[string]bool{}}
	if err := write(aw, tagged); err != nil {
		return err
	}
	if err := aw.tw.Close(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// NormalizeTag parses an image name as docker does ("busybox" is
// docker.io/library/busybox:latest).
func NormalizeTag(tag string) (reference.NamedTagged, error) {
	named, err := reference.ParseNormalizedNamed(tag)
	if err != nil {
		return nil, fmt.Errorf("image name %q: %w", tag, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return nil, fmt.Errorf("image name %q: a digest cannot name an image in an archive", tag)
	}
	nt, ok := reference.TagNameOnly(named).(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("image name %q: no tag", tag)
	}
	return nt, nil
}

// archiveWriter writes tar entries once each, dated Epoch.
type archiveWriter struct {
	tw      *tar.Writer
	written map[string]bool
}

func (a *archiveWriter) file(name string, data []byte) error {
	return a.stream(name, int64(len(data)), bytes.NewReader(data))
}

func (a *archiveWriter) stream(name string, size int64, r io.Reader) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	h := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: Epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	n, err := io.Copy(a.tw, r)
	if err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write %q: %d bytes, want %d", name, n, size)
	}
	return nil
}

func (a *archiveWriter) dir(name string) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	return a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, ModTime: Epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX})
}

// layer writes a compressed layer blob under name.
func (a *archiveWriter) layer(name string, l v1.Layer) error {
	if a.written[name] {
		return nil
	}
	size, err := l.Size()
	if err != nil {
		return fmt.Errorf("layer %q: %w", name, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %q: %w", name, err)
	}
	defer rc.Close()
	return a.stream(name, size, rc)
}

// dockerManifestEntry is one image of a docker archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func dockerArchive(a *archiveWriter, imgs []taggedImage) error {
	var manifest []dockerManifestEntry
	byConfig := map[string]int{}
	for _, ti := range imgs {
		cfgName, err := ti.img.ConfigName()
		if err != nil {
			return fmt.Errorf("image %q: %w", ti.named, err)
		}
		tag := reference.FamiliarString(ti.named)
		if i, ok := byConfig[cfgName.Hex]; ok {
			manifest[i].RepoTags = append(manifest[i].RepoTags, tag)
			continue
		}
		cfg, err := ti.img.RawConfigFile()
		if err != nil {
			return fmt.Errorf("image %q: %w", ti.named, err)
		}
		entry := dockerManifestEntry{Config: cfgName.Hex + ".json", RepoTags: []string{tag}}
		if err := a.file(entry.Config, cfg); err != nil {
			return err
		}
		layers, err := ti.img.Layers()
		if err != nil {
			return fmt.Errorf("image %q: %w", ti.named, err)
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return fmt.Errorf("image %q: %w", ti.named, err)
			}
			name := d.Hex + ".tar.gz"
			if err := a.layer(name, l); err != nil {
				return err
			}
			entry.Layers = append(entry.Layers, name)
		}
		byConfig[cfgName.Hex] = len(manifest)
		manifest = append(manifest, entry)
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	return a.file("manifest.json", b)
}

func ociArchive(a *archiveWriter, imgs []taggedImage) error {
	if err := a.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := a.dir(d); err != nil {
			return err
		}
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	for _, ti := range imgs {
		desc, err := ociImage(a, ti.img)
		if err != nil {
			return fmt.Errorf("image %q: %w", ti.named, err)
		}
		desc.Annotations = map[string]string{
			annotationImageName: ti.named.String(),
			annotationRefName:   ti.named.(reference.Tagged).Tag(),
		}
		index.Manifests = append(index.Manifests, desc)
	}
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return a.file("index.json", b)
}

// ociImage writes the image's blobs and returns its manifest's descriptor.
func ociImage(a *archiveWriter, img v1.Image) (v1.Descriptor, error) {
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	layers, err := img.Layers()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Descriptor{}, err
		}
		if err := a.layer(blob(d), l); err != nil {
			return v1.Descriptor{}, err
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := a.file(blob(cfgName), cfg); err != nil {
		return v1.Descriptor{}, err
	}
	m, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := a.file(blob(d), m); err != nil {
		return v1.Descriptor{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{
		MediaType: mt, Size: int64(len(m)), Digest: d,
		Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
	}, nil
}
