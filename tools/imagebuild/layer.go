package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// entry is one file of the layer. A symlink's data is its target.
type entry struct {
	path string
	mode fs.FileMode
	data []byte
}

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
	group  = "root:x:0:\nnobody:x:65534:\n"
)

// baseFiles is the busybox root filesystem every image starts from.
func baseFiles(busybox []byte, applets []string) []entry {
	files := []entry{
		{path: "/bin/busybox", mode: 0o755, data: busybox},
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{path: "/etc/group", mode: 0o644, data: []byte(group)},
		{path: "/tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{path: "/root", mode: fs.ModeDir | 0o700},
	}
	// Mount points and the usual directories of PATH, so that a read-only
	// root filesystem still has them.
	for _, d := range []string{"/dev", "/proc", "/sys", "/home", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/var"} {
		files = append(files, entry{path: d, mode: fs.ModeDir | 0o755})
	}
	for _, a := range applets {
		files = append(files, entry{path: "/bin/" + a, mode: fs.ModeSymlink | 0o777, data: []byte("busybox")})
	}
	return files
}

// newLayer writes the entries as a reproducible tar: later entries replace
// earlier ones with the same path, missing parents become 0755 directories,
// entries are sorted, owned by root and dated Epoch.
func newLayer(files []entry) (v1.Layer, error) {
	b, err := layerTar(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}
	return layer, nil
}

func layerTar(files []entry) ([]byte, error) {
	byPath := map[string]entry{}
	for _, f := range files {
		byPath[f.path] = f
		for d := path.Dir(f.path); d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = entry{path: d, mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p, e := range byPath {
		if e.mode.IsDir() || e.mode&fs.ModeSymlink != 0 {
			continue
		}
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if !byPath[d].mode.IsDir() {
				return nil, fmt.Errorf("file %q: parent %q is not a directory", p, d)
			}
		}
	}
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		e := byPath[p]
		h := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    tarMode(e.mode),
			ModTime: Epoch,
			Uname:   "root",
			Gname:   "root",
			Format:  tar.FormatPAX,
		}
		switch {
		case e.mode.IsDir():
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case e.mode&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			h.Linkname = string(e.data)
		case e.mode.IsRegular():
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		default:
			return nil, fmt.Errorf("file %q: unsupported mode %v", p, e.mode)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write layer entry %q: %w", p, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("write layer entry %q: %w", p, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}

func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
