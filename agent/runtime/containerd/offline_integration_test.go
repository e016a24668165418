package containerd

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// storeAs imports img into the runtime's store under tag, as an archive
// from the flash would put it there.
func storeAs(t *testing.T, h *harness, tag string, img v1.Image) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := imagebuild.WriteDockerArchive(p, map[string]v1.Image{tag: img}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.ImportArchive(h.ctx, p); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationOfflinePull: a policy-Always pull of an image in the
// store fails with RegistryUnreachable only when no registry answered,
// mirrors included, and it fails soon; the stored image stays usable.
func TestIntegrationOfflinePull(t *testing.T) {
	h := newHarness(t)
	busybox := standIn(t, "busybox:latest")
	empty := testenv.Registry(t) // answers "not found" for every image
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer unauthorized.Close()
	refused := refusedAddr(t)
	port := refused[strings.LastIndex(refused, ":")+1:]
	tests := []struct {
		name    string
		mirrors map[string][]string
		image   string // stored as this name and pulled
		want    bool   // RegistryUnreachable
	}{
		{name: "untagged, nothing listens", image: refused + "/busybox", want: true},
		{name: ":latest on a localhost name, nothing listens", image: "localhost:" + port + "/busybox:latest", want: true},
		{
			name:    "mirror refused, registry name does not resolve",
			mirrors: map[string][]string{"*": {"http://" + refused}},
			image:   "registry.invalid/busybox", want: true,
		},
		{
			name:    "mirror answers not found, registry name does not resolve",
			mirrors: map[string][]string{"*": {"http://" + empty}},
			image:   "registry.invalid/busybox", want: false,
		},
		{name: "registry answers not found", image: empty + "/busybox", want: false},
		{name: "registry answers unauthorized", image: strings.TrimPrefix(unauthorized.URL, "http://") + "/busybox", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(h.ctx, Config{Address: h.env.Address(), StateDir: h.env.StateDir, RuncPath: h.env.RuncPath, RuncRoot: h.env.RuncRoot, Mirrors: tt.mirrors})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			storeAs(t, h, tt.image, busybox)

			start := time.Now()
			_, err = r.EnsureImage(h.ctx, tt.image, corev1.PullAlways)
			took := time.Since(start)
			var pe *runtime.PullError
			if !errors.As(err, &pe) {
				t.Fatalf("EnsureImage(%q, Always) = %v, want a PullError", tt.image, err)
			}
			if pe.RegistryUnreachable != tt.want {
				t.Errorf("EnsureImage(%q, Always): RegistryUnreachable = %v, want %v (%v)", tt.image, pe.RegistryUnreachable, tt.want, err)
			}
			t.Logf("pull failed in %v: %v", took.Round(time.Millisecond), err)
			// Each unreachable host is tried once, and none of these makes
			// a dial wait for its timeout.
			if limit := 5 * time.Second; took > limit {
				t.Errorf("the pull took %v, want less than %v", took, limit)
			}
			if _, err := r.EnsureImage(h.ctx, tt.image, corev1.PullNever); err != nil {
				t.Errorf("the stored image after the failed pull: %v", err)
			}
		})
	}
}
