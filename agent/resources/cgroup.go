package resources

import (
	"math"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Constants of pkg/kubelet/cm/helpers_linux.go; the share bounds are the
// kernel's.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000

	// quotaPeriod is the CFS period in µs (100 ms). kubelet's
	// --cpu-cfs-quota-period is behind the CPUCFSQuotaPeriod gate and
	// podboot keeps the default.
	quotaPeriod = 100000
	// minQuotaPeriod is the smallest quota the kernel accepts, 1 ms.
	minQuotaPeriod = 1000
)

// CgroupValues are the cgroup settings of one container or of a pod cgroup.
type CgroupValues struct {
	CPUShares uint64 // cgroup v1 cpu.shares (kubelet MilliCPUToShares: min 2, max 262144)
	CPUWeight uint64 // cgroup v2 cpu.weight from the shares, as runc converts them (cpuWeight)
	CPUQuota  int64  // cpu.max quota in µs; -1 = max (no limit). kubelet MilliCPUToQuota, min 1000 µs
	CPUPeriod uint64 // 100000 µs
	MemoryMax int64  // memory.max bytes; -1 = max
}

// ContainerCgroup is what kubelet asks the runtime for one container
// (pkg/kubelet/kuberuntime/kuberuntime_container_linux.go
// calculateLinuxResources): shares from the cpu request, or from the cpu
// limit when no request is given at all (kubelet repeats the API server's
// defaulting there); a quota only with a cpu limit; memory.max only with a
// memory limit.
func ContainerCgroup(c *corev1.Container) CgroupValues {
	cpuLimit := c.Resources.Limits.Cpu().MilliValue()
	var shares uint64
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		shares = MilliCPUToShares(c.Resources.Requests.Cpu().MilliValue())
	} else {
		shares = MilliCPUToShares(cpuLimit)
	}
	v := CgroupValues{
		CPUShares: shares,
		CPUWeight: CPUWeight(shares),
		CPUQuota:  -1,
		CPUPeriod: quotaPeriod,
		MemoryMax: -1,
	}
	if q := milliCPUToQuota(cpuLimit); q != 0 {
		v.CPUQuota = q
	}
	if m := c.Resources.Limits.Memory().Value(); m != 0 {
		v.MemoryMax = m
	}
	return v
}

// PodCgroup is kubelet's ResourceConfigForPod (pkg/kubelet/cm/helpers_linux.go)
// with CFS quota enforced and the default period: shares from PodRequests
// (overhead and pod-level requests included); for a Guaranteed pod the quota
// and memory.max from PodLimits; for a Burstable pod each only when every
// container (init containers counted with the sidecars running beside them)
// sets that limit, or the pod sets it at pod level; a BestEffort pod gets
// the minimum shares and no limits.
func PodCgroup(pod *corev1.Pod) CgroupValues {
	reqs := PodRequests(pod)
	limits := PodLimits(pod)
	cpuDeclared, memDeclared := limitsDeclared(pod)

	var cpuRequest, cpuLimit, memLimit int64
	if q, ok := reqs[corev1.ResourceCPU]; ok {
		cpuRequest = q.MilliValue()
	}
	if q, ok := limits[corev1.ResourceCPU]; ok {
		cpuLimit = q.MilliValue()
	}
	if q, ok := limits[corev1.ResourceMemory]; ok {
		memLimit = q.Value()
	}

	v := CgroupValues{CPUQuota: -1, CPUPeriod: quotaPeriod, MemoryMax: -1}
	switch QOSClass(pod) {
	case corev1.PodQOSGuaranteed:
		v.CPUShares = MilliCPUToShares(cpuRequest)
		cpuDeclared, memDeclared = true, true
	case corev1.PodQOSBurstable:
		v.CPUShares = MilliCPUToShares(cpuRequest)
	default:
		v.CPUShares = minShares
		cpuDeclared, memDeclared = false, false
	}
	if q := milliCPUToQuota(cpuLimit); cpuDeclared && q != 0 {
		v.CPUQuota = q
	}
	// 0 leaves memory unset in libcontainer, which is max.
	if memDeclared && memLimit != 0 {
		v.MemoryMax = memLimit
	}
	v.CPUWeight = CPUWeight(v.CPUShares)
	return v
}

// limitsDeclared reports whether every container limits cpu and memory, as
// ResourceConfigForPod's ContainerFn sees them: app containers one by one,
// each init container together with the sidecars started before it (a
// sidecar with its predecessors). Pod-level limits declare a resource too.
func limitsDeclared(pod *corev1.Pod) (cpu, memory bool) {
	cpu, memory = true, true
	check := func(l corev1.ResourceList) {
		if l.Cpu().IsZero() {
			cpu = false
		}
		if l.Memory().IsZero() {
			memory = false
		}
	}
	for i := range pod.Spec.Containers {
		check(pod.Spec.Containers[i].Resources.Limits)
	}
	sidecars := corev1.ResourceList{}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) {
			add(sidecars, c.Resources.Limits)
			check(sidecars)
			continue
		}
		phase := corev1.ResourceList{}
		add(phase, c.Resources.Limits)
		add(phase, sidecars)
		check(phase)
	}
	if podLevelResourcesSet(pod) {
		if !pod.Spec.Resources.Limits.Cpu().IsZero() {
			cpu = true
		}
		if !pod.Spec.Resources.Limits.Memory().IsZero() {
			memory = true
		}
	}
	return cpu, memory
}

// MilliCPUToShares is kubelet's cm.MilliCPUToShares. Zero milli-CPU is 2
// shares, the kernel's minimum, not the kernel's default of 1024.
func MilliCPUToShares(milliCPU int64) uint64 {
	if milliCPU == 0 {
		return minShares
	}
	// (milliCPU / 1000) * 1024, factored to round better.
	shares := (milliCPU * sharesPerCPU) / milliCPUToCPU
	if shares < minShares {
		return minShares
	}
	if shares > maxShares {
		return maxShares
	}
	return uint64(shares)
}

// milliCPUToQuota is kubelet's cm.MilliCPUToQuota for the default period:
// 0 (no quota) for no limit, otherwise at least 1 ms.
func milliCPUToQuota(milliCPU int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	quota := (milliCPU * quotaPeriod) / milliCPUToCPU
	if quota < minQuotaPeriod {
		return minQuotaPeriod
	}
	return quota
}

// CPUWeight converts cgroup v1 shares to cgroup v2 cpu.weight as runc does
// (opencontainers/cgroups ConvertCPUSharesToCgroupV2Value), which is what
// the board's runc writes for a container and what kubelet, through the same
// library, writes for a pod cgroup.
//
// This is the newest conversion (opencontainers/runc#4785, runc 1.4; the
// board ships runc 1.5): a quadratic in log2(shares) that maps 2 → 1,
// 1024 → 100 (the cgroup v2 default, so one CPU weighs like an
// unconfigured cgroup) and 262144 → 10000. Older runc used the linear
// 1 + ((shares-2)*9999)/262142, which gave one CPU a weight of 39 and
// 100m a weight of 4 (kubernetes/kubernetes#131216).
func CPUWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0 // unset
	case shares <= minShares:
		return 1
	case shares >= maxShares:
		return 10000
	}
	l := math.Log2(float64(shares))
	exponent := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exponent)))
}

// CgroupV2 renders the values as cgroup v2 file contents: cpu.weight,
// cpu.max ("20000 100000" or "max 100000") and memory.max (bytes or "max").
func (v CgroupValues) CgroupV2() map[string]string {
	quota := "max"
	if v.CPUQuota >= 0 {
		quota = strconv.FormatInt(v.CPUQuota, 10)
	}
	memory := "max"
	if v.MemoryMax >= 0 {
		memory = strconv.FormatInt(v.MemoryMax, 10)
	}
	return map[string]string{
		"cpu.weight": strconv.FormatUint(v.CPUWeight, 10),
		"cpu.max":    quota + " " + strconv.FormatUint(v.CPUPeriod, 10),
		"memory.max": memory,
	}
}
