package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/podboot/podboot/agent/runtime"
	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/internal/device"
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

// networkAdapter gives the runtime what it needs of podnet.
type networkAdapter struct{ n *podnet.Network }

var _ ctrdruntime.PodNetwork = networkAdapter{}

func (a networkAdapter) Setup(ctx context.Context, podUID, netnsPath string) ([]string, error) {
	res, err := a.n.Setup(ctx, podUID, netnsPath)
	if err != nil {
		return nil, err
	}
	ips := make([]string, 0, len(res.IPs))
	for _, ip := range res.IPs {
		ips = append(ips, ip.String())
	}
	return ips, nil
}

func (a networkAdapter) Teardown(ctx context.Context, podUID, netnsPath string) error {
	return a.n.Teardown(ctx, podUID, netnsPath)
}

// collectNetworkGarbage releases the attachments of pods that have no
// sandbox any more: removed while the agent was down, or left by a
// sandbox whose creation was cut short.
func collectNetworkGarbage(ctx context.Context, n *podnet.Network, rt runtime.Runtime, log *slog.Logger) {
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
}
