package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadPodNetwork(t *testing.T) {
	tests := []struct {
		name    string
		content string // "" = no file
		want    PodNetwork
		wantErr string
	}{
		{name: "defaults", want: PodNetwork{Bridge: "cni0", Subnet: "10.88.0.0/16"}},
		{name: "empty section is the defaults", content: "network:\n  pods: {}\n", want: PodNetwork{Bridge: "cni0", Subnet: "10.88.0.0/16"}},
		{name: "all set", content: "network:\n  pods:\n    bridge: pods0\n    subnet: 172.30.0.0/24\n    mtu: 1400\n",
			want: PodNetwork{Bridge: "pods0", Subnet: "172.30.0.0/24", MTU: 1400}},
		{name: "ipv6 subnet", content: "network:\n  pods:\n    subnet: fd00:88::/64\n    mtu: 1280\n",
			want: PodNetwork{Bridge: "cni0", Subnet: "fd00:88::/64", MTU: 1280}},
		{name: "smallest subnet", content: "network:\n  pods:\n    subnet: 10.1.0.0/30\n", want: PodNetwork{Bridge: "cni0", Subnet: "10.1.0.0/30"}},
		{name: "unknown field", content: "network:\n  pods:\n    cidr: 10.1.0.0/16\n", wantErr: `unknown field "cidr"`},
		{name: "not a cidr", content: "network:\n  pods:\n    subnet: 10.88.0.0\n", wantErr: `network.pods.subnet: Invalid value: "10.88.0.0": want a network in CIDR form`},
		{name: "garbage subnet", content: "network:\n  pods:\n    subnet: pods\n", wantErr: `network.pods.subnet: Invalid value: "pods"`},
		{name: "host bits set", content: "network:\n  pods:\n    subnet: 10.88.0.1/16\n", wantErr: `network.pods.subnet: Invalid value: "10.88.0.1/16": host bits set, want the network address 10.88.0.0/16`},
		{name: "too small", content: "network:\n  pods:\n    subnet: 10.1.0.0/31\n", wantErr: `network.pods.subnet: Invalid value: "10.1.0.0/31": too small`},
		{name: "ipv6 too small", content: "network:\n  pods:\n    subnet: fd00::/127\n", wantErr: `network.pods.subnet: Invalid value: "fd00::/127": too small for a gateway and a pod, want /126 or larger`},
		{name: "long bridge name", content: "network:\n  pods:\n    bridge: abcdefghijklmnop\n", wantErr: `network.pods.bridge: Invalid value: "abcdefghijklmnop": longer than 15 characters`},
		{name: "slash in bridge name", content: "network:\n  pods:\n    bridge: a/b\n", wantErr: `network.pods.bridge: Invalid value: "a/b"`},
		{name: "negative mtu", content: "network:\n  pods:\n    mtu: -1\n", wantErr: `network.pods.mtu: Invalid value: -1`},
		{name: "mtu too large", content: "network:\n  pods:\n    mtu: 65536\n", wantErr: `network.pods.mtu: Invalid value: 65536`},
		{name: "ipv6 mtu below 1280", content: "network:\n  pods:\n    subnet: fd00::/64\n    mtu: 1200\n", wantErr: `network.pods.mtu: Invalid value: 1200: want 0 (the link's) or 1280 to 65535`},
		{name: "ipv4 small mtu", content: "network:\n  pods:\n    mtu: 576\n", want: PodNetwork{Bridge: "cni0", Subnet: "10.88.0.0/16", MTU: 576}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "device.yaml")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, d.Network.Pods); diff != "" {
				t.Errorf("network.pods (-want +got):\n%s", diff)
			}
			if got := d.Network.Pods.Prefix().String(); got != tt.want.Subnet {
				t.Errorf("Prefix() = %s, want %s", got, tt.want.Subnet)
			}
		})
	}
}
