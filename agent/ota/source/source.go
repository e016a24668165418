package source

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Source is where the controller looks for bundles: *Registry or *Layout.
type Source interface {
	// Resolve returns the manifest descriptor of the newest bundle there.
	Resolve(ctx context.Context) (ocispec.Descriptor, error)
	// Storage fetches the manifest and its blobs by descriptor.
	Storage() content.Fetcher
}

var (
	_ Source = (*Registry)(nil)
	_ Source = (*Layout)(nil)
)

// Schemes of a source as device.yaml's ota.source spells it.
const (
	SchemeRegistry = "oci://"      // oci://HOST[:PORT]/REPO:TAG
	SchemeLayout   = "oci-layout:" // oci-layout:/ABSOLUTE/DIR (a mounted USB stick)
)

// New makes the Source that spec names: "oci://HOST[:PORT]/REPO:TAG" is a
// Registry (plainHTTP for device.yaml's ota.insecure, downloads cached in
// cacheDir), "oci-layout:/DIR" a Layout.
func New(spec string, plainHTTP bool, cacheDir string) (Source, error) {
	switch {
	case strings.HasPrefix(spec, SchemeRegistry):
		ref := strings.TrimPrefix(spec, SchemeRegistry)
		if ref == "" {
			return nil, fmt.Errorf("ota source %q: no HOST/REPO:TAG", spec)
		}
		return &Registry{Ref: ref, PlainHTTP: plainHTTP, CacheDir: cacheDir}, nil
	case strings.HasPrefix(spec, SchemeLayout):
		dir := strings.TrimPrefix(spec, SchemeLayout)
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("ota source %q: the layout directory must be an absolute path", spec)
		}
		return &Layout{Dir: filepath.Clean(dir)}, nil
	}
	return nil, fmt.Errorf("ota source %q: neither %sHOST/REPO:TAG nor %s/DIR", spec, SchemeRegistry, SchemeLayout)
}
