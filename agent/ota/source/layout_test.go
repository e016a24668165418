package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
)

// testLayout writes an OCI layout with two artifacts (generations 1 and 2)
// through oras-go's OCI store and returns their manifests and the first
// one's layer; the tests write index.json themselves.
func testLayout(t *testing.T) (dir string, gen1, gen2, layer ocispec.Descriptor, layerData []byte) {
	t.Helper()
	dir = t.TempDir()
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	layerData = bytes.Repeat([]byte("pods "), 1000)
	if layer, err = oras.PushBytes(ctx, store, "application/vnd.podboot.test.layer", layerData); err != nil {
		t.Fatal(err)
	}
	var gens []ocispec.Descriptor
	for _, cfg := range []string{`{"generation":1}`, `{"generation":2}`} {
		config, err := oras.PushBytes(ctx, store, "application/vnd.podboot.test.config+json", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		m, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/vnd.podboot.test", oras.PackManifestOptions{
			ConfigDescriptor: &config,
			Layers:           []ocispec.Descriptor{layer},
		})
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: m.ArtifactType})
	}
	return dir, gens[0], gens[1], layer, layerData
}

func tagged(d ocispec.Descriptor, name string) ocispec.Descriptor {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	return d
}

func writeIndex(t *testing.T, dir string, manifests ...ocispec.Descriptor) {
	t.Helper()
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLayoutResolve(t *testing.T) {
	dir, gen1, gen2, layer, _ := testLayout(t)
	for _, tc := range []struct {
		name      string
		manifests []ocispec.Descriptor
		want      ocispec.Descriptor
		wantErr   string
	}{
		{name: "one manifest", manifests: []ocispec.Descriptor{gen1}, want: gen1},
		{name: "one manifest, tagged otherwise", manifests: []ocispec.Descriptor{tagged(gen2, "v2")}, want: gen2},
		{name: "the one tagged latest", manifests: []ocispec.Descriptor{tagged(gen1, "v1"), tagged(gen2, "latest")}, want: gen2},
		{name: "several, none latest", manifests: []ocispec.Descriptor{tagged(gen1, "v1"), gen2}, wantErr: `2 manifests and 0 of them are tagged "latest"`},
		{name: "several latest", manifests: []ocispec.Descriptor{tagged(gen1, "latest"), tagged(gen2, "latest")}, wantErr: `2 manifests and 2 of them are tagged "latest"`},
		{name: "none", wantErr: "lists no manifest"},
		{name: "not a manifest", manifests: []ocispec.Descriptor{layer}, wantErr: "not a manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeIndex(t, dir, tc.manifests...)
			got, err := (&Layout{Dir: dir}).Resolve(t.Context())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("Resolve: %v, want an error naming %s and %q", err, dir, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLayoutResolveNotALayout(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "stick")
	if _, err := (&Layout{Dir: missing}).Resolve(t.Context()); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Resolve of a missing directory: %v, want fs.ErrNotExist naming it", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"2.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Layout{Dir: dir}).Resolve(t.Context()); err == nil || !strings.Contains(err.Error(), `imageLayoutVersion "2.0.0"`) {
		t.Errorf("Resolve of a layout of another version: %v", err)
	}
}

func TestLayoutStorage(t *testing.T) {
	dir, gen1, _, layer, layerData := testLayout(t)
	writeIndex(t, dir, gen1)
	l := &Layout{Dir: dir}
	desc, err := l.Resolve(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data, err := readAll(t, l.Storage(), desc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ocispec.Descriptor{layer}, m.Layers); diff != "" {
		t.Fatalf("manifest's layers (-want +got):\n%s", diff)
	}
	got, err := readAll(t, l.Storage(), layer)
	if err != nil || !bytes.Equal(got, layerData) {
		t.Fatalf("fetch the layer: %v (%d bytes)", err, len(got))
	}

	for _, tc := range []struct {
		name   string
		desc   ocispec.Descriptor
		change func(path string) error
		want   error
	}{
		{"changed on the stick", layer, func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte("evil "), 1000), 0o644) }, content.ErrMismatchedDigest},
		{"longer on the stick", layer, func(p string) error { return os.WriteFile(p, append(layerData, 'x'), 0o644) }, content.ErrTrailingData},
		{"shorter on the stick", layer, func(p string) error { return os.WriteFile(p, layerData[1:], 0o644) }, io.ErrUnexpectedEOF},
		{"not on the stick", layer, os.Remove, errdef.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "blobs", "sha256", layer.Digest.Encoded())
			if err := tc.change(path); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(path, layerData, 0o644) })
			_, err := readAll(t, l.Storage(), tc.desc)
			if !errors.Is(err, tc.want) {
				t.Errorf("fetch: %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), layer.Digest.String()) {
				t.Errorf("fetch: %v does not name the blob", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    Source
		wantErr string
	}{
		{spec: "oci://registry.example:5000/fleet/edge:stable", want: &Registry{Ref: "registry.example:5000/fleet/edge:stable", PlainHTTP: true, CacheDir: "/flash/ota/downloads"}},
		{spec: "oci-layout:/media/usb/ota/", want: &Layout{Dir: "/media/usb/ota"}},
		{spec: "oci-layout:media/usb", wantErr: "absolute"},
		{spec: "oci://", wantErr: "no HOST/REPO:TAG"},
		{spec: "https://registry.example/fleet/edge:stable", wantErr: "neither"},
	} {
		got, err := New(tc.spec, true, "/flash/ota/downloads")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%q): %v, want an error with %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *Registry) bool {
			return a.Ref == b.Ref && a.PlainHTTP == b.PlainHTTP && a.CacheDir == b.CacheDir
		})); diff != "" {
			t.Errorf("New(%q) (-want +got):\n%s", tc.spec, diff)
		}
	}
}
