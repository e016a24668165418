package cgroups

import (
	"math"
	"path"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/resources"
)

// QoS cgroup names of kubelet's cgroupfs driver
// (pkg/kubelet/cm/qos_container_manager_linux.go); Guaranteed pods sit
// directly under the root.
const (
	burstableName  = "burstable"
	besteffortName = "besteffort"
	// podPrefix is kubelet's podCgroupNamePrefix
	// (pkg/kubelet/cm/pod_container_manager_linux.go).
	podPrefix = "pod"
)

// values are what one cgroup gets; a zero field leaves its file as it is.
type values struct {
	CPUShares uint64 // v1 cpu.shares
	CPUWeight uint64 // v2 cpu.weight
	CPUQuota  int64  // v1 cpu.cfs_quota_us, v2 cpu.max quota; -1 = max; used only with CPUPeriod
	CPUPeriod uint64 // v1 cpu.cfs_period_us, v2 cpu.max period
	MemoryMax int64  // v1 memory.limit_in_bytes, v2 memory.max; -1 = max
	PidsMax   int64  // pids.max; -1 = max
}

// qosParent is the cgroup a pod of that QoS class goes under, relative to
// the root (kubelet's GetPodContainerName with cgroupfs naming).
func qosParent(class corev1.PodQOSClass) string {
	switch class {
	case corev1.PodQOSBurstable:
		return burstableName
	case corev1.PodQOSBestEffort:
		return besteffortName
	}
	return ""
}

// podPath is "<root>[/burstable|/besteffort]/pod<uid>".
func podPath(root string, class corev1.PodQOSClass, uid types.UID) string {
	return path.Join(root, qosParent(class), podPrefix+string(uid))
}

// validUID reports whether uid names one directory: not empty, no slash,
// not a dot name.
func validUID(uid types.UID) bool {
	s := string(uid)
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == 0 {
			return false
		}
	}
	return true
}

// podValues are the pod cgroup's values: resources.PodCgroup (kubelet's
// ResourceConfigForPod) and kubelet's podPidsLimit (<= 0 is max).
func podValues(pod *corev1.Pod, pidsLimit int64) values {
	v := resources.PodCgroup(pod)
	pids := int64(-1)
	if pidsLimit > 0 {
		pids = pidsLimit
	}
	return values{
		CPUShares: v.CPUShares,
		CPUWeight: v.CPUWeight,
		CPUQuota:  v.CPUQuota,
		CPUPeriod: v.CPUPeriod,
		MemoryMax: v.MemoryMax,
		PidsMax:   pids,
	}
}

// rootValues enforce node allocatable on the root (kubelet's
// getCgroupConfig in node_container_manager_linux.go): shares from the
// allocatable cpu and a memory limit of the allocatable memory; a resource
// missing from the list is left alone.
func rootValues(allocatable corev1.ResourceList) values {
	var v values
	if q, ok := allocatable[corev1.ResourceCPU]; ok {
		v.CPUShares, v.CPUWeight = cpuShares(q.MilliValue())
	}
	if q, ok := allocatable[corev1.ResourceMemory]; ok {
		v.MemoryMax = q.Value()
	}
	return v
}

// besteffortValues: kubelet keeps the besteffort QoS cgroup at MinShares
// (qos_container_manager_linux.go setCPUCgroupConfig).
func besteffortValues() values {
	s, w := cpuShares(0)
	return values{CPUShares: s, CPUWeight: w}
}

// burstableValues: the burstable QoS cgroup's shares are MilliCPUToShares
// of the sum of the cpu requests of the Burstable pods
// (qos_container_manager_linux.go setCPUCgroupConfig).
func burstableValues(pods []*corev1.Pod) values {
	var milliCPU int64
	for _, pod := range pods {
		if pod == nil || resources.QOSClass(pod) != corev1.PodQOSBurstable {
			continue
		}
		if q, ok := resources.PodRequests(pod)[corev1.ResourceCPU]; ok {
			milliCPU += q.MilliValue()
		}
	}
	s, w := cpuShares(milliCPU)
	return values{CPUShares: s, CPUWeight: w}
}

// cpuShares is kubelet's MilliCPUToShares and its cgroup v2 weight, from
// agent/resources, the one home of kubelet's formulas.
func cpuShares(milliCPU int64) (shares, weight uint64) {
	shares = resources.MilliCPUToShares(milliCPU)
	return shares, resources.CPUWeight(shares)
}

// v1Resources maps the values onto the OCI resources cgroup1 writes:
// cpu.shares, cpu.cfs_period_us and cpu.cfs_quota_us (-1 is no limit in
// v1), memory.limit_in_bytes (-1 is no limit) and pids.max (cgroup1 writes
// only a positive limit; a new cgroup's pids.max is max).
func v1Resources(v values) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if v.CPUShares != 0 || v.CPUPeriod != 0 {
		r.CPU = &specs.LinuxCPU{}
		if v.CPUShares != 0 {
			r.CPU.Shares = ptr(v.CPUShares)
		}
		if v.CPUPeriod != 0 {
			r.CPU.Period = ptr(v.CPUPeriod)
			r.CPU.Quota = ptr(v.CPUQuota)
		}
	}
	if v.MemoryMax != 0 {
		r.Memory = &specs.LinuxMemory{Limit: ptr(v.MemoryMax)}
	}
	if v.PidsMax != 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(v.PidsMax)}
	}
	return r
}

// v2Resources maps the values onto cgroup2's: cpu.weight, cpu.max
// ("max 100000" without a quota), memory.max and pids.max. cgroup2 writes
// memory.max as a number, so max is math.MaxInt64, which the kernel caps
// to its page counter maximum and reads back as "max".
func v2Resources(v values) *cgroup2.Resources {
	r := &cgroup2.Resources{}
	if v.CPUWeight != 0 || v.CPUPeriod != 0 {
		r.CPU = &cgroup2.CPU{}
		if v.CPUWeight != 0 {
			r.CPU.Weight = ptr(v.CPUWeight)
		}
		if v.CPUPeriod != 0 {
			var quota *int64
			if v.CPUQuota >= 0 {
				quota = ptr(v.CPUQuota)
			}
			r.CPU.Max = cgroup2.NewCPUMax(quota, ptr(v.CPUPeriod))
		}
	}
	switch {
	case v.MemoryMax < 0:
		r.Memory = &cgroup2.Memory{Max: ptr(int64(math.MaxInt64))}
	case v.MemoryMax > 0:
		r.Memory = &cgroup2.Memory{Max: ptr(v.MemoryMax)}
	}
	if v.PidsMax != 0 {
		r.Pids = &cgroup2.Pids{Max: v.PidsMax}
	}
	return r
}

func ptr[T any](v T) *T { return &v }
