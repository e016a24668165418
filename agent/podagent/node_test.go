package podagent

import (
	"context"
	goruntime "runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/device"
)

type fixedVersion string

func (v fixedVersion) Version(context.Context) (string, error) { return string(v), nil }

// TestBuildNodeLabels: the node carries kubelet's well-known labels and
// device.yaml's node.labels (kubelet's --node-labels), which pods select
// with nodeSelector and node affinity.
func TestBuildNodeLabels(t *testing.T) {
	wellKnown := map[string]string{
		"kubernetes.io/hostname":           "board",
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               goruntime.GOARCH,
		"beta.kubernetes.io/os":            "linux",
		"beta.kubernetes.io/arch":          goruntime.GOARCH,
		"node.kubernetes.io/instance-type": "podboot",
	}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range wellKnown {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		dev  device.Node
		want map[string]string
	}{
		{name: "no device labels", want: wellKnown},
		{
			name: "device labels beside the well-known ones",
			dev:  device.Node{Labels: map[string]string{"disktype": "ssd", "example.com/zone": "greenhouse-2"}},
			want: with(map[string]string{"disktype": "ssd", "example.com/zone": "greenhouse-2"}),
		},
		{
			// kubelet's --node-labels overwrite its defaults (with a
			// warning); device.yaml refuses only the three the board must
			// own.
			name: "a device label replaces a default one",
			dev:  device.Node{Labels: map[string]string{"node.kubernetes.io/instance-type": "pi4"}},
			want: with(map[string]string{"node.kubernetes.io/instance-type": "pi4"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, err := buildNode(t.Context(), "board", fixedVersion("v2.4.2"), device.Resources{}, tt.dev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, node.Labels); diff != "" {
				t.Errorf("node labels (-want +got):\n%s", diff)
			}
		})
	}
}
