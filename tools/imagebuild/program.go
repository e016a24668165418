package imagebuild

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// The Go stand-ins' sources: each directory of standins/ is a main
// package of the standard library only, so it builds from these embedded
// copies in a module of its own, wherever the go command is, without the
// repository or a module download.
//
//go:embed standins
var programs embed.FS

// goBuildFlags are the flags of every program build (with CGO_ENABLED=0:
// static): no paths of the build machine, stripped. They are part of the
// cache key.
func goBuildFlags() []string { return []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w"} }

// programSources are the files of program name that its build reads: its
// .go files but the tests.
func programSources(name string) (map[string][]byte, error) {
	dir := path.Join("standins", name)
	entries, err := fs.ReadDir(programs, dir)
	if err != nil {
		return nil, fmt.Errorf("no stand-in program %q: %w", name, err)
	}
	srcs := map[string][]byte{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := fs.ReadFile(programs, path.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("read stand-in program %q: %w", name, err)
		}
		srcs[n] = b
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no stand-in program %q: no Go files", name)
	}
	return srcs, nil
}

// ProgramDigest is a digest of program name's sources and build flags: a
// cache of images built from the stand-ins keys on it (with the go
// command's version), as a spec names its programs but does not hold them.
func ProgramDigest(name string) (string, error) {
	srcs, err := programSources(name)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "program %s\nflags %q\n", name, goBuildFlags())
	for _, n := range slices.Sorted(maps.Keys(srcs)) {
		fmt.Fprintf(h, "file %s %d\n", n, len(srcs[n]))
		h.Write(srcs[n])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// buildProgram returns program name built for linux/arch with the go
// command on PATH. Builds are cached in the user's cache directory (else
// the temporary one) under the digest of the sources, the architecture
// and the go command's version, so each is built once per machine, not
// once per image or test binary.
func buildProgram(name, arch string) ([]byte, error) {
	b, err := cachedBuild(name, arch, programCacheDir())
	if err != nil {
		return nil, fmt.Errorf("build stand-in program %s for linux/%s: %w", name, arch, err)
	}
	return b, nil
}

func cachedBuild(name, arch, cacheDir string) ([]byte, error) {
	srcs, err := programSources(name)
	if err != nil {
		return nil, err
	}
	digest, err := ProgramDigest(name)
	if err != nil {
		return nil, err
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed: %w", err)
	}
	env := append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=", "GOWORK=off",
		// The standard library only: nothing to download, and no other
		// toolchain either.
		"GOPROXY=off", "GOTOOLCHAIN=local",
	)
	version, err := goOutput(gocmd, "", env, "env", "GOVERSION")
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256([]byte(digest + "\n" + arch + "\n" + strings.TrimSpace(version)))
	cached := filepath.Join(cacheDir, fmt.Sprintf("%s-linux-%s-%s", name, arch, hex.EncodeToString(key[:8])))
	if b, err := os.ReadFile(cached); err == nil {
		return b, nil
	}

	src, err := os.MkdirTemp("", "podboot-standin-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(src)
	srcs["go.mod"] = []byte("module podboot.local/standin/" + name + "\n\ngo 1.25\n")
	for n, b := range srcs {
		if err := os.WriteFile(filepath.Join(src, n), b, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache %s: %w", cacheDir, err)
	}
	// Built beside its cache entry and renamed into place, so a test binary
	// that builds the same program at the same time finds a whole file.
	tmp, err := os.CreateTemp(cacheDir, "."+filepath.Base(cached)+".*")
	if err != nil {
		return nil, fmt.Errorf("create cache entry: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append([]string{"build", "-o", tmp.Name()}, goBuildFlags()...)
	if _, err := goOutput(gocmd, src, env, append(args, ".")...); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), cached); err != nil {
		return nil, fmt.Errorf("cache %s: %w", cached, err)
	}
	// Builds of older sources would pile up, 6 MB each: the new one
	// replaces them. A reader that loses its file to this just builds.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, fmt.Sprintf("%s-linux-%s-*", name, arch)))
	for _, p := range stale {
		if p != cached {
			os.Remove(p)
		}
	}
	return b, nil
}

// programCacheDir is where built programs are kept.
func programCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "podboot", "standins")
}

func goOutput(gocmd, dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command(gocmd, args...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out), nil
}
