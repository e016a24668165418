package containerd

import (
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

var cmpIgnoreTimes = cmp.Options{cmpopts.IgnoreTypes(time.Time{})}

func itoa(n int) string { return strconv.Itoa(n) }

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// standIn reads a stand-in image from the test images.
func standIn(t testing.TB, tag string) v1.Image {
	t.Helper()
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(testenv.Image(t, tag), &ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ociArchive writes the stand-ins with these tags as one OCI archive.
func ociArchive(t testing.TB, tags ...string) string {
	t.Helper()
	imgs := map[string]v1.Image{}
	for _, tag := range tags {
		imgs[tag] = standIn(t, tag)
	}
	p := filepath.Join(t.TempDir(), "images.tar")
	if err := imagebuild.WriteOCIArchive(p, imgs); err != nil {
		t.Fatal(err)
	}
	return p
}

// pushStandIn pushes a stand-in to the registry and returns its manifest
// digest.
func pushStandIn(t testing.TB, host, tag, repoTag string) string {
	t.Helper()
	img := standIn(t, tag)
	testenv.Push(t, host, repoTag, img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
