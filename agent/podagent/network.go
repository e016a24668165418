package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/internal/device"
	"github.com/podboot/podboot/netsetup/hostport"
	"github.com/podboot/podboot/netsetup/podnet"
)

// podNetwork is the pod network through CNI: the bridge and host-local
// plugins from cniBinDir, configured from device.yaml's network.pods, with
// their allocations and libcni's cache in the agent's state (tmpfs on a
// board: a reboot starts afresh, an agent restart keeps every pod's IP).
func podNetwork(cniBinDir, stateDir string, cfg device.PodNetwork) (*podnet.Network, error) {
	list, err := podnet.Conflist(cfg, filepath.Join(stateDir, "cni", "networks"))
	if err != nil {
		return nil, err
	}
	n, err := podnet.New(podnet.Config{PluginDirs: []string{cniBinDir}, Conflist: list, CacheDir: filepath.Join(stateDir, "cni", "cache")})
	if err != nil {
		return nil, fmt.Errorf("pod network with plugins from %q: %w", cniBinDir, err)
	}
	return n, nil
}

// networkAdapter gives the runtime what it needs of podnet and hostport.
type networkAdapter struct {
	n  *podnet.Network
	hp *hostport.Manager // nil: no NAT (hostPorts are refused)
}

var _ ctrdruntime.PodNetwork = networkAdapter{}

func (a networkAdapter) Setup(ctx context.Context, podUID, netnsPath string, hostPorts []corev1.ContainerPort) ([]string, error) {
	ports := make([]hostport.Port, 0, len(hostPorts))
	for _, cp := range hostPorts {
		p, err := hostport.FromContainerPort(cp)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	if len(ports) > 0 && a.hp == nil {
		return nil, fmt.Errorf("hostPort %d: the node's port mapping (nftables) is off", ports[0].HostPort)
	}
	res, err := a.n.Setup(ctx, podUID, netnsPath)
	if err != nil {
		return nil, err
	}
	ips := make([]string, 0, len(res.IPs))
	for _, ip := range res.IPs {
		ips = append(ips, ip.String())
	}
	if len(ports) > 0 && len(res.IPs) > 0 {
		ip, _ := netip.AddrFromSlice(res.IPs[0])
		if err := a.hp.Add(podUID, ip.Unmap(), ports); err != nil {
			return nil, err
		}
	}
	return ips, nil
}

func (a networkAdapter) Teardown(ctx context.Context, podUID, netnsPath string) error {
	if a.hp != nil {
		if err := a.hp.Remove(podUID); err != nil {
			return err
		}
	}
	return a.n.Teardown(ctx, podUID, netnsPath)
}

// nodeNAT sets up the node's NAT for the pod subnet: masquerade of pods
// going outside, and the table hostPorts are published in.
func nodeNAT(cfg device.PodNetwork) (*hostport.Manager, error) {
	hp, err := hostport.New(hostport.Options{PodSubnets: []netip.Prefix{cfg.Prefix()}, Bridge: cfg.Bridge})
	if err != nil {
		return nil, err
	}
	if err := hp.EnsureBase(); err != nil {
		return nil, err
	}
	return hp, nil
}

// collectNetworkGarbage releases the attachments of pods that have no
// sandbox any more: removed while the agent was down, or left by a
// sandbox whose creation was cut short.
func collectNetworkGarbage(ctx context.Context, n *podnet.Network, hp *hostport.Manager, rt runtime.Runtime, log *slog.Logger) {
	sandboxes, err := rt.ListSandboxes(ctx)
	if err != nil {
		log.Warn("pod network garbage collection skipped", "err", err)
		return
	}
	keep := make([]string, 0, len(sandboxes))
	for _, sb := range sandboxes {
		keep = append(keep, string(sb.Pod.UID))
	}
	if err := n.GC(ctx, keep); err != nil {
		log.Warn("pod network garbage collection", "err", err)
	}
	if hp != nil {
		kept := make(map[string]bool, len(keep))
		for _, uid := range keep {
			kept[uid] = true
		}
		if err := hp.GC(kept); err != nil {
			log.Warn("hostPort garbage collection", "err", err)
		}
	}
}
