package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/agent/cgroups"
	"github.com/podboot/podboot/agent/leftovers"
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

// collectLeftovers removes, at start, what dead pods left: the pinned
// namespaces, volumes and pod files under the state directory and the pod
// and container cgroups of pods the runtime no longer has, or of
// containers with no live task (agent/leftovers). It must run before the
// pod manager starts. m is nil when pod cgroups are off.
func collectLeftovers(ctx context.Context, stateDir string, m *cgroups.Manager, rt runtime.Runtime, log *slog.Logger) {
	c := &leftovers.Collector{
		Runtime: rt,
		PodDirs: []string{
			filepath.Join(stateDir, "netns"),
			filepath.Join(stateDir, "kubelet", "pods"),
			filepath.Join(stateDir, "podfiles"),
		},
		Log: log,
	}
	if m != nil {
		c.Cgroups = m
	}
	if _, err := c.Collect(ctx); err != nil {
		log.Warn("collect leftovers of dead pods", "err", err)
	}
}

// podCgroupsOrNil keeps a nil *Manager from becoming a non-nil interface.
func podCgroupsOrNil(m *cgroups.Manager) reconcile.PodCgroups {
	if m == nil {
		return nil
	}
	return m
}
