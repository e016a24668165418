package containerd

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podboot/podboot/agent/runtime"
)

// TestWithVolumeMounts: CRI's WithMounts (internal/cri/opts/spec_linux_opts.go).
func TestWithVolumeMounts(t *testing.T) {
	defaults := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs"},
	}
	tests := []struct {
		name   string
		mounts []runtime.Mount
		want   []specs.Mount
	}{
		{name: "none", want: defaults},
		{
			name: "ordered by depth, read-only is ro",
			mounts: []runtime.Mount{
				{HostPath: "/v/logs", ContainerPath: "/data/logs"},
				{HostPath: "/v/data", ContainerPath: "/data", ReadOnly: true},
			},
			want: append(append([]specs.Mount(nil), defaults...),
				specs.Mount{Destination: "/data", Source: "/v/data", Type: "bind", Options: []string{"rbind", "rprivate", "ro"}},
				specs.Mount{Destination: "/data/logs", Source: "/v/logs", Type: "bind", Options: []string{"rbind", "rprivate", "rw"}},
			),
		},
		{
			name:   "a volume replaces the default mount at its destination",
			mounts: []runtime.Mount{{HostPath: "/v/run", ContainerPath: "/run/"}},
			want: append(append([]specs.Mount(nil), defaults[:3]...),
				specs.Mount{Destination: "/run/", Source: "/v/run", Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}),
		},
		{
			name:   "a volume at /dev replaces every mount under it",
			mounts: []runtime.Mount{{HostPath: "/v/dev", ContainerPath: "/dev"}},
			want: []specs.Mount{defaults[0], defaults[3],
				{Destination: "/dev", Source: "/v/dev", Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &oci.Spec{Mounts: append([]specs.Mount(nil), defaults...)}
			if err := withVolumeMounts(tt.mounts)(context.Background(), nil, nil, s); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, s.Mounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
		})
	}
}
