package imagebuild

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func TestWriteDockerArchive(t *testing.T) {
	img, err := Build(Spec{Arch: hostArch(t), Busybox: testBusybox(t), Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := WriteDockerArchive(p, map[string]v1.Image{"busybox": img, "busybox:1.36": img, "registry.k8s.io/busybox:1.27.2": img}); err != nil {
		t.Fatal(err)
	}
	var manifest []dockerManifestEntry
	if err := json.Unmarshal([]byte(readTarFile(t, p, "manifest.json")), &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 {
		t.Fatalf("manifest.json has %d images, want 1", len(manifest))
	}
	want := []string{"busybox:1.36", "busybox:latest", "registry.k8s.io/busybox:1.27.2"}
	if diff := cmp.Diff(want, manifest[0].RepoTags); diff != "" {
		t.Errorf("RepoTags (-want +got):\n%s", diff)
	}
	// go-containerregistry reads it back as the same image.
	tag, _ := name.NewTag("registry.k8s.io/busybox:1.27.2")
	back, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := img.ConfigName()
	gotCfg, _ := back.ConfigName()
	if wantCfg != gotCfg {
		t.Errorf("config digest read back %v, want %v", gotCfg, wantCfg)
	}
}

func TestWriteOCIArchive(t *testing.T) {
	img, err := Build(Spec{Arch: hostArch(t), Busybox: testBusybox(t), Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "a.tar")
	if err := WriteOCIArchive(p, map[string]v1.Image{"busybox:1.36": img, "nginx": img}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "layout")
	if o, err := runCmd("tar", "-C", mkdir(t, out), "-xf", p); err != nil {
		t.Fatalf("untar: %v: %s", err, o)
	}
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var names []map[string]string
	wantDigest, _ := img.Digest()
	for _, m := range im.Manifests {
		names = append(names, m.Annotations)
		if m.Digest != wantDigest {
			t.Errorf("manifest digest %v, want %v", m.Digest, wantDigest)
		}
		back, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateLayers(back); err != nil {
			t.Error(err)
		}
	}
	want := []map[string]string{
		{annotationImageName: "docker.io/library/busybox:1.36", annotationRefName: "1.36"},
		{annotationImageName: "docker.io/library/nginx:latest", annotationRefName: "latest"},
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("index annotations (-want +got):\n%s", diff)
	}
}

func validateLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestWriteArchiveErrors(t *testing.T) {
	img, err := Build(Spec{Arch: hostArch(t), Busybox: testBusybox(t)})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "a.tar")
	tests := []struct {
		name string
		imgs map[string]v1.Image
		want string
	}{
		{"none", nil, "no images"},
		{"bad name", map[string]v1.Image{"Busybox:1": img}, `image name "Busybox:1"`},
		{"digest", map[string]v1.Image{"busybox@sha256:" + strings.Repeat("a", 64): img}, "a digest cannot name"},
		{"same image twice", map[string]v1.Image{"busybox": img, "busybox:latest": img}, "name the same image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteDockerArchive(p, tt.imgs)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("WriteDockerArchive() error = %v, want one naming %q and containing %q", err, p, tt.want)
			}
		})
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("failed writes left %q behind", p)
	}
}

func mkdir(t *testing.T, p string) string {
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func readTarFile(t *testing.T, archive, name string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no %s: %v", archive, name, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}
