package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestRegistryPush(t *testing.T) {
	host := Registry(t)
	tag, _ := name.NewTag("busybox:1.36")
	img, err := tarball.ImageFromPath(Image(t, "busybox:1.36"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	ref := Push(t, host, "library/busybox:1.36", img)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s back: %v", ref, err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled digest %v, want %v", d, want)
	}
}

func TestImages(t *testing.T) {
	dir := Images(t)
	for _, s := range StandIns(t) {
		if _, err := os.Stat(filepath.Join(dir, ArchiveName(s.Tags[0]))); err != nil {
			t.Errorf("no archive for %s: %v", s.Tags[0], err)
		}
	}
	if again := Images(t); again != dir {
		t.Errorf("Images() = %q then %q, want the same directory", dir, again)
	}
}

func TestIntegrationContainerd(t *testing.T) {
	var dir string
	t.Run("run", func(t *testing.T) {
		env := Containerd(t)
		dir = env.Layout.Dir
		c := env.Client(t)
		v, err := c.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v.Version == "" {
			t.Error("containerd reports no version")
		}
		if len(dir) > 40 {
			t.Errorf("layout directory %q is long; unix sockets allow 108 bytes", dir)
		}
	})
	if dir == "" {
		return
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s behind (stat: %v)", dir, err)
	}
	if m, err := Mounts(dir); err != nil || len(m) != 0 {
		t.Errorf("cleanup left mounts %v (%v)", m, err)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}
