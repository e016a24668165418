package podnet

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/podboot/podboot/internal/device"
)

// The network's name and CNI version in the conflist. The name keys
// libcni's cache and host-local's allocations (<dataDir>/podboot/).
const (
	NetworkName = "podboot"
	CNIVersion  = "1.0.0"
	// IfName is the pod's interface, as every CRI runtime names it.
	IfName = "eth0"
)

type conflist struct {
	CNIVersion string   `json:"cniVersion"`
	Name       string   `json:"name"`
	Plugins    []plugin `json:"plugins"`
}

// plugin is the bridge plugin's configuration (plugins/main/bridge).
type plugin struct {
	Type        string `json:"type"`
	Bridge      string `json:"bridge"`
	IsGateway   bool   `json:"isGateway"`
	IPMasq      bool   `json:"ipMasq"`
	HairpinMode bool   `json:"hairpinMode"`
	MTU         int    `json:"mtu,omitempty"`
	IPAM        ipam   `json:"ipam"`
}

// ipam is host-local's configuration (plugins/ipam/host-local).
type ipam struct {
	Type    string        `json:"type"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []route       `json:"routes"`
	DataDir string        `json:"dataDir"`
}

type ipamRange struct {
	Subnet string `json:"subnet"`
}

type route struct {
	Dst string `json:"dst"`
}

// Conflist is the CNI network configuration list for the pods: one bridge
// plugin with host-local addresses from cfg's subnet. The bridge is the
// pods' gateway; ipMasq is off because NAT is podboot's own (nftables), and
// hairpin mode lets a pod reach itself through a service address.
// Loopback is not in the list: Setup brings lo up itself.
//
// dataDir is host-local's allocation directory; pass one under the
// agent's runtime state (tmpfs, e.g. /run/podboot/cni/networks) so
// allocations survive an agent restart and vanish with a reboot, together
// with the namespaces they were made for.
func Conflist(cfg device.PodNetwork, dataDir string) ([]byte, error) {
	if dataDir == "" || !filepath.IsAbs(dataDir) {
		return nil, fmt.Errorf("pod network conflist: host-local data directory %q: want an absolute path", dataDir)
	}
	cfg = withDefaults(cfg)
	pfx, err := parseSubnet(cfg.Subnet)
	if err != nil {
		return nil, fmt.Errorf("pod network conflist: %w", err)
	}
	defaultRoute := "0.0.0.0/0"
	if pfx.Addr().Is6() {
		defaultRoute = "::/0"
	}
	c := conflist{
		CNIVersion: CNIVersion,
		Name:       NetworkName,
		Plugins: []plugin{{
			Type:        "bridge",
			Bridge:      cfg.Bridge,
			IsGateway:   true,
			IPMasq:      false,
			HairpinMode: true,
			MTU:         cfg.MTU,
			IPAM: ipam{
				Type:    "host-local",
				Ranges:  [][]ipamRange{{{Subnet: pfx.String()}}},
				Routes:  []route{{Dst: defaultRoute}},
				DataDir: dataDir,
			},
		}},
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pod network conflist: %w", err)
	}
	return append(b, '\n'), nil
}
