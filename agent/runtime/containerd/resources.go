package containerd

import (
	"context"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/containerd/v2/core/containers"
	capability "github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podboot/podboot/agent/runtime"
)

// resourceOpts place the container's cgroup under its pod's and apply its
// limits, as containerd's CRI does with kubelet's LinuxContainerResources:
// cgroupsPath <pod cgroup>/<container id>, cpu shares (runc writes
// cpu.weight from them on v2), CFS quota and period, memory limit, and the
// process's oom_score_adj.
func resourceOpts(id string, cfg runtime.ContainerConfig) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if parent := cfg.Sandbox.CgroupParent; parent != "" {
		opts = append(opts, oci.WithCgroup(path.Join(parent, id)))
	}
	res := cfg.Resources
	if res == nil {
		return opts
	}
	if res.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(res.CPUShares))
	}
	if res.CPUQuota > 0 {
		opts = append(opts, oci.WithCPUCFS(res.CPUQuota, res.CPUPeriod))
	}
	if res.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(res.MemoryLimit)))
		if cgroups.Mode() == cgroups.Unified {
			// kubelet on cgroup v2 (singleProcessOOMKill off): the OOM
			// killer takes the whole container, as one would expect of a
			// container over its limit, not just its largest process.
			opts = append(opts, withUnified("memory.oom.group", "1"))
		}
	}
	opts = append(opts, withOOMScoreAdj(max(res.OOMScoreAdj, oomScoreAdjFloor())))
	return opts
}

// oomScoreAdjFloor is the lowest oom_score_adj the runtime may give a
// process: any (-1000) with CAP_SYS_RESOURCE, as on a board; without it
// (some sandboxed hosts) the kernel refuses to lower a score below the
// agent's own, runc would fail the container, and the score is kept at
// the agent's own instead, as containerd's restrict_oom_score_adj does.
var oomScoreAdjFloor = sync.OnceValue(func() int {
	caps, err := capability.Current()
	if err != nil || slices.Contains(caps, "CAP_SYS_RESOURCE") {
		return -1000
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return -1000
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1000
	}
	return own
})

func withOOMScoreAdj(adj int) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.OOMScoreAdj = &adj
		return nil
	}
}

func withUnified(key, value string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Unified == nil {
			s.Linux.Resources.Unified = map[string]string{}
		}
		s.Linux.Resources.Unified[key] = value
		return nil
	}
}
