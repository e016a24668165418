package podnet

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/device"
)

var update = flag.Bool("update", false, "rewrite testdata/*.conflist")

func TestConflist(t *testing.T) {
	tests := []struct {
		name    string
		cfg     device.PodNetwork
		dataDir string
		wantErr string
	}{
		{name: "defaults", cfg: device.PodNetwork{}, dataDir: "/run/podboot/cni/networks"},
		{name: "all-set", cfg: device.PodNetwork{Bridge: "pods0", Subnet: "172.30.0.0/24", MTU: 1400}, dataDir: "/run/podboot/cni/networks"},
		{name: "ipv6", cfg: device.PodNetwork{Subnet: "fd00:88::/64"}, dataDir: "/run/podboot/cni/networks"},
		{name: "relative data dir", dataDir: "cni", wantErr: `host-local data directory "cni": want an absolute path`},
		{name: "no data dir", wantErr: `host-local data directory "": want an absolute path`},
		{name: "bad subnet", cfg: device.PodNetwork{Subnet: "10.88.0.0"}, dataDir: "/run/x", wantErr: `subnet "10.88.0.0": not a network in CIDR form`},
		{name: "host bits", cfg: device.PodNetwork{Subnet: "10.88.0.1/16"}, dataDir: "/run/x", wantErr: `subnet "10.88.0.1/16": host bits set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Conflist(tt.cfg, tt.dataDir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".conflist")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("conflist (-want +got):\n%s", diff)
			}
			// libcni reads it as we meant it.
			list, err := libcni.ConfListFromBytes(got)
			if err != nil {
				t.Fatal(err)
			}
			if list.Name != "podboot" || list.CNIVersion != "1.0.0" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "bridge" || list.Plugins[0].Network.IPAM.Type != "host-local" {
				t.Errorf("libcni reads %+v", list)
			}
		})
	}
}
