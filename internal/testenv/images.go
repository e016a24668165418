package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/podboot/podboot/tools/imagebuild"
)

// Busybox is the static busybox the images are built from.
const Busybox = "/bin/busybox"

// StandIns are the stand-in specs for the host architecture.
func StandIns(t testing.TB) []imagebuild.Spec {
	t.Helper()
	if _, err := os.Stat(Busybox); err != nil {
		Unavailable(t, "needs a static busybox at %s (apt-get install busybox-static)", Busybox)
	}
	return imagebuild.StandIns(goruntime.GOARCH, Busybox)
}

// Images returns a directory of docker archives, one per stand-in image
// (named by tools/mkimage's rule, e.g. busybox_latest.tar), built for the
// host architecture.
//
// Builds are reproducible, so the directory is named by a hash of every
// input (the busybox binary, the specs and their Go programs' sources) and shared by the test binaries
// and runs that have the same inputs; it is built once, into a temporary
// directory renamed into place, so concurrent test binaries are safe.
func Images(t testing.TB) string {
	t.Helper()
	specs := StandIns(t)
	key, err := inputsKey(specs)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "podboot-images-"+key)
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(os.TempDir(), ".podboot-images-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for _, s := range specs {
		img, err := imagebuild.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		imgs := map[string]v1.Image{}
		for _, tag := range s.Tags {
			imgs[tag] = img
		}
		if err := imagebuild.WriteDockerArchive(filepath.Join(tmp, ArchiveName(s.Tags[0])), imgs); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another test binary won the race: use its directory.
		if _, statErr := os.Stat(filepath.Join(dir, "done")); statErr != nil {
			t.Fatalf("build images into %s: %v", dir, err)
		}
	}
	return dir
}

// Image is the path of the docker archive holding tag (one of a stand-in's
// tags) in Images' directory.
func Image(t testing.TB, tag string) string {
	t.Helper()
	for _, s := range StandIns(t) {
		for _, st := range s.Tags {
			if st == tag {
				return filepath.Join(Images(t), ArchiveName(s.Tags[0]))
			}
		}
	}
	t.Fatalf("no stand-in image is tagged %q", tag)
	return ""
}

// ArchiveName is the file name of an image's archive:
// registry.k8s.io/busybox:1.27.2 → registry.k8s.io_busybox_1.27.2.tar.
func ArchiveName(tag string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(tag) + ".tar"
}

func inputsKey(specs []imagebuild.Spec) (string, error) {
	h := sha256.New()
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", Busybox, err)
	}
	h.Write(bb)
	if err := json.NewEncoder(h).Encode(specs); err != nil {
		return "", fmt.Errorf("hash image specs: %w", err)
	}
	// A spec names its Go programs; their sources and the toolchain that
	// builds them are inputs too.
	fmt.Fprintf(h, "go %s\n", goruntime.Version())
	for _, s := range specs {
		for _, f := range s.Files {
			if f.Program == "" {
				continue
			}
			d, err := imagebuild.ProgramDigest(f.Program)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "program %s %s\n", f.Program, d)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
