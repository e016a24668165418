package containerd

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationMirrors pulls images named after public registries from
// a local registry configured as their mirror, without internet: the
// pulled image keeps its public name.
func TestIntegrationMirrors(t *testing.T) {
	h := newHarness(t)
	host := testenv.Registry(t)
	nginx := pushStandIn(t, host, "nginx:1.29", "library/nginx:latest")
	pause := pushStandIn(t, host, "busybox:1.36", "pause:3.10")
	local := "http://" + host
	// Nothing listens on port 1 of the loopback address: the resolver
	// moves on to the next endpoint.
	const dead = "http://127.0.0.1:1"
	tests := []struct {
		name    string
		mirrors map[string][]string
		image   string
		want    runtime.Image
	}{
		{
			name:    "docker.io mirror",
			mirrors: map[string][]string{"docker.io": {local}},
			image:   "nginx",
			want:    runtime.Image{Ref: "docker.io/library/nginx:latest", ID: "docker.io/library/nginx@" + nginx, StopSignal: "SIGQUIT"},
		},
		{
			name:    "endpoints tried in order",
			mirrors: map[string][]string{"docker.io": {dead, local}},
			image:   "docker.io/library/nginx:latest",
			want:    runtime.Image{Ref: "docker.io/library/nginx:latest", ID: "docker.io/library/nginx@" + nginx, StopSignal: "SIGQUIT"},
		},
		{
			name:    "wildcard",
			mirrors: map[string][]string{"*": {local + "/"}},
			image:   "registry.k8s.io/pause:3.10",
			want:    runtime.Image{Ref: "registry.k8s.io/pause:3.10", ID: "registry.k8s.io/pause@" + pause},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(h.ctx, Config{Address: h.env.Address(), StateDir: h.env.StateDir, RuncPath: h.env.RuncPath, RuncRoot: h.env.RuncRoot, Mirrors: tt.mirrors})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			img, err := r.EnsureImage(h.ctx, tt.image, corev1.PullAlways)
			if err != nil {
				t.Fatalf("EnsureImage(%q, Always): %v", tt.image, err)
			}
			if diff := cmp.Diff(tt.want, img); diff != "" {
				t.Errorf("image (-want +got):\n%s", diff)
			}
			if _, err := r.client.GetImage(r.withNamespace(h.ctx), tt.want.Ref); err != nil {
				t.Errorf("image %q after the mirrored pull: %v", tt.want.Ref, err)
			}
		})
	}
	t.Run("invalid mirror", func(t *testing.T) {
		_, err := New(h.ctx, Config{Address: h.env.Address(), StateDir: h.env.StateDir, Mirrors: map[string][]string{"docker.io": {"127.0.0.1:5000"}}})
		if err == nil {
			t.Fatal("New accepted a mirror endpoint without a scheme")
		}
	})
}
