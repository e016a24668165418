package podnet

import (
	"fmt"
	"net/netip"

	"github.com/podboot/podboot/internal/device"
)

// withDefaults fills what a PodNetwork built by hand (not loaded through
// device.Load) leaves empty.
func withDefaults(cfg device.PodNetwork) device.PodNetwork {
	if cfg.Bridge == "" {
		cfg.Bridge = device.DefaultPodBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = device.DefaultPodSubnet
	}
	return cfg
}

func parseSubnet(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %q: not a network in CIDR form", s)
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Errorf("subnet %q: host bits set, want %s", s, pfx.Masked())
	}
	return pfx, nil
}
