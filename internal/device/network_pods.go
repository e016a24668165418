package device

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// Defaults for the pod network: containerd's and podman's bridge name and
// CRI subnet, so a board's pods look like any containerd node's.
const (
	DefaultPodBridge = "cni0"
	DefaultPodSubnet = "10.88.0.0/16"
)

// PodNetwork is device.yaml's network.pods: the bridge every pod's veth is
// attached to and the subnet the pods' addresses are taken from. It sits
// under network: because it is the board's network too, beside the host
// link, and the host link's subnet and the pods' must not overlap.
type PodNetwork struct {
	// Bridge is the Linux bridge's name, default "cni0".
	Bridge string `json:"bridge,omitempty"`
	// Subnet is the pods' network in CIDR form, default "10.88.0.0/16";
	// the bridge takes its first address as the pods' gateway. An IPv6
	// subnet (fd00:88::/64) gives the pods IPv6 addresses instead.
	Subnet string `json:"subnet,omitempty"`
	// MTU of the bridge and the veths; 0 is the plugin's default (the
	// bridge's own).
	MTU int `json:"mtu,omitempty"`
}

// Linux's limits (IFNAMSIZ, the smallest MTUs IPv4 and IPv6 allow).
const (
	maxIfNameLen = 15
	minMTUv4     = 68
	minMTUv6     = 1280
	maxMTU       = 65535
)

func (p PodNetwork) withDefaults() PodNetwork {
	if p.Bridge == "" {
		p.Bridge = DefaultPodBridge
	}
	if p.Subnet == "" {
		p.Subnet = DefaultPodSubnet
	}
	return p
}

// Prefix is the subnet parsed; call it on a validated (loaded) config.
func (p PodNetwork) Prefix() netip.Prefix {
	pfx, err := netip.ParsePrefix(p.withDefaults().Subnet)
	if err != nil {
		return netip.MustParsePrefix(DefaultPodSubnet)
	}
	return pfx
}

func (p PodNetwork) validate() error {
	const field = "network.pods"
	if b := p.Bridge; b != "" {
		if err := checkIfName(b); err != nil {
			return fmt.Errorf("%s.bridge: Invalid value: %q: %v", field, b, err)
		}
	}
	ipv6 := false
	if s := p.Subnet; s != "" {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%s.subnet: Invalid value: %q: want a network in CIDR form, e.g. %s", field, s, DefaultPodSubnet)
		}
		if pfx.Masked() != pfx {
			return fmt.Errorf("%s.subnet: Invalid value: %q: host bits set, want the network address %s", field, s, pfx.Masked())
		}
		// The gateway, one pod and (IPv4) the broadcast address must fit.
		if pfx.Addr().BitLen()-pfx.Bits() < 2 {
			return fmt.Errorf("%s.subnet: Invalid value: %q: too small for a gateway and a pod, want /%d or larger", field, s, pfx.Addr().BitLen()-2)
		}
		ipv6 = pfx.Addr().Is6()
	}
	if m := p.MTU; m != 0 {
		lowest := minMTUv4
		if ipv6 {
			lowest = minMTUv6
		}
		if m < lowest || m > maxMTU {
			return fmt.Errorf("%s.mtu: Invalid value: %d: want 0 (the link's) or %d to %d", field, m, lowest, maxMTU)
		}
	}
	return nil
}

// checkIfName is the kernel's dev_valid_name.
func checkIfName(name string) error {
	switch {
	case len(name) > maxIfNameLen:
		return fmt.Errorf("longer than %d characters", maxIfNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("not an interface name")
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }):
		return fmt.Errorf("must not contain '/', ':' or spaces")
	}
	return nil
}
