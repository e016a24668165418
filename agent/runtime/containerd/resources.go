package containerd

import (
	"context"
	"path"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/containerd/v2/core/containers"
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
	opts = append(opts, withOOMScoreAdj(res.OOMScoreAdj))
	return opts
}

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
