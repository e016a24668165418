package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"path"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/cgroups"
	"github.com/podboot/podboot/agent/reconcile"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/device"
)

// podCgroups makes kubelet's kubepods hierarchy under cgroupRoot, with the
// node's allocatable enforced on it: capacity minus system-reserved, not
// minus the eviction threshold (kubelet's --enforce-node-allocatable=pods).
func podCgroups(cgroupRoot string, node *corev1.Node, res device.Resources, log *slog.Logger) (*cgroups.Manager, error) {
	enforced := admission.Allocatable(node.Status.Capacity, res.SystemReservedList())
	m, err := cgroups.New(cgroups.Config{
		Root:         path.Join(cgroupRoot, "kubepods"),
		Allocatable:  enforced,
		PodPidsLimit: res.PidsLimit(),
		Log:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("pod cgroups under %q: %w", cgroupRoot, err)
	}
	return m, nil
}

// removeStrayPodCgroups removes the pod cgroups no sandbox uses: left by an
// agent that stopped between making a pod's cgroup and its sandbox. The
// pod manager removes the others with their pods.
func removeStrayPodCgroups(ctx context.Context, m *cgroups.Manager, rt runtime.Runtime, log *slog.Logger) {
	uids, err := m.PodUIDs()
	if err != nil {
		log.Warn("list pod cgroups", "err", err)
		return
	}
	sandboxes, err := rt.ListSandboxes(ctx)
	if err != nil {
		log.Warn("list sandboxes for the pod cgroups", "err", err)
		return
	}
	used := map[string]bool{}
	for _, sb := range sandboxes {
		used[string(sb.Pod.UID)] = true
	}
	for _, uid := range uids {
		if used[string(uid)] {
			continue
		}
		if err := m.RemovePod(uid); err != nil {
			log.Warn("remove stray pod cgroup", "uid", uid, "err", err)
			continue
		}
		log.Info("removed stray pod cgroup", "uid", uid)
	}
}

// podCgroupsOrNil keeps a nil *Manager from becoming a non-nil interface.
func podCgroupsOrNil(m *cgroups.Manager) reconcile.PodCgroups {
	if m == nil {
		return nil
	}
	return m
}
