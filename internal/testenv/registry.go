package testenv

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/podboot/podboot/tools/imagebuild"
)

// Registry serves an empty in-memory registry on 127.0.0.1:<random port>
// until the test ends and returns its host ("127.0.0.1:PORT"). Clients
// reach it over plain HTTP, as registries on the loopback address are.
func Registry(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the registry: %v", err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("registry: %v", err)
		}
	})
	return ln.Addr().String()
}

// Push uploads img to the registry at host as repoTag (e.g. "busybox:1.36"
// becomes host/busybox:1.36) and returns the image's reference there.
func Push(t testing.TB, host, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatalf("push %q: %v", repoTag, err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref.String()
}

// Mirror serves every image of specs from a new registry on 127.0.0.1
// under its upstream repository path (docker.io/library/nginx is served as
// library/nginx), so pods that name docker.io, registry.k8s.io or gcr.io
// images pull them through a mirror, as an air-gapped k3s would. It
// returns the registry's host:port.
func Mirror(t testing.TB, specs []imagebuild.Spec) string {
	t.Helper()
	host := Registry(t)
	for _, spec := range specs {
		img, err := imagebuild.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range spec.Tags {
			nt, err := imagebuild.NormalizeTag(tag)
			if err != nil {
				t.Fatal(err)
			}
			Push(t, host, reference.Path(nt)+":"+nt.Tag(), img)
		}
	}
	return host
}
