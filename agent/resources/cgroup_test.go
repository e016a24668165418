package resources

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// Cases after pkg/kubelet/cm/helpers_linux_test.go (TestMilliCPUToShares,
// TestMilliCPUToQuota) and opencontainers/cgroups utils_test.go.
func TestMilliCPUToShares(t *testing.T) {
	tests := []struct {
		milliCPU int64
		want     uint64
	}{
		{0, 2}, {1, 2}, {2, 2}, {3, 3}, {100, 102}, {250, 256}, {1000, 1024},
		{1500, 1536}, {256000, 262144}, {300000, 262144},
	}
	for _, tt := range tests {
		if got := MilliCPUToShares(tt.milliCPU); got != tt.want {
			t.Errorf("MilliCPUToShares(%d) = %d, want %d", tt.milliCPU, got, tt.want)
		}
	}
}

func TestMilliCPUToQuota(t *testing.T) {
	tests := []struct {
		milliCPU int64
		want     int64
	}{
		{0, 0}, {5, 1000}, {9, 1000}, {10, 1000}, {200, 20000}, {250, 25000}, {500, 50000}, {1000, 100000}, {1500, 150000},
	}
	for _, tt := range tests {
		if got := milliCPUToQuota(tt.milliCPU); got != tt.want {
			t.Errorf("milliCPUToQuota(%d) = %d, want %d", tt.milliCPU, got, tt.want)
		}
	}
}

func TestCPUWeight(t *testing.T) {
	tests := []struct {
		shares uint64
		want   uint64
	}{
		{0, 0}, {2, 1}, {3, 2}, {102, 17}, {256, 35}, {512, 59}, {1024, 100},
		{2048, 174}, {4096, 303}, {262143, 10000}, {262144, 10000},
	}
	for _, tt := range tests {
		if got := CPUWeight(tt.shares); got != tt.want {
			t.Errorf("CPUWeight(%d) = %d, want %d", tt.shares, got, tt.want)
		}
	}
}

func TestContainerCgroup(t *testing.T) {
	tests := []struct {
		name string
		c    corev1.Container
		want CgroupValues
	}{
		{"nothing set", ctr("a", nil, nil),
			CgroupValues{CPUShares: 2, CPUWeight: 1, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1}},
		{"100m request", ctr("a", list("cpu", "100m"), nil),
			CgroupValues{CPUShares: 102, CPUWeight: 17, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1}},
		{"zero request", ctr("a", list("cpu", "0"), nil),
			CgroupValues{CPUShares: 2, CPUWeight: 1, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1}},
		{"250m limit, undefaulted: shares from the limit", ctr("a", nil, list("cpu", "250m")),
			CgroupValues{CPUShares: 256, CPUWeight: 35, CPUQuota: 25000, CPUPeriod: 100000, MemoryMax: -1}},
		{"250m limit, defaulted request", ctr("a", list("cpu", "250m"), list("cpu", "250m")),
			CgroupValues{CPUShares: 256, CPUWeight: 35, CPUQuota: 25000, CPUPeriod: 100000, MemoryMax: -1}},
		{"explicit zero request keeps minimum shares under a limit", ctr("a", list("cpu", "0"), list("cpu", "1")),
			CgroupValues{CPUShares: 2, CPUWeight: 1, CPUQuota: 100000, CPUPeriod: 100000, MemoryMax: -1}},
		{"tiny limit gets the 1ms minimum quota", ctr("a", list("cpu", "1m"), list("cpu", "1m")),
			CgroupValues{CPUShares: 2, CPUWeight: 1, CPUQuota: 1000, CPUPeriod: 100000, MemoryMax: -1}},
		{"memory limit", ctr("a", list("memory", "16Mi"), list("memory", "32Mi")),
			CgroupValues{CPUShares: 2, CPUWeight: 1, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: 33554432}},
		{"one cpu", ctr("a", list("cpu", "1", "memory", "1Gi"), list("cpu", "2", "memory", "1Gi")),
			CgroupValues{CPUShares: 1024, CPUWeight: 100, CPUQuota: 200000, CPUPeriod: 100000, MemoryMax: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ContainerCgroup(&tt.c)); diff != "" {
				t.Errorf("ContainerCgroup (-want +got):\n%s", diff)
			}
		})
	}
}

// Cases after pkg/kubelet/cm/helpers_linux_test.go TestResourceConfigForPod
// and TestResourceConfigForPodWithCustomCPUCFSQuotaPeriod (default period).
func TestPodCgroup(t *testing.T) {
	unlimited := func(shares, weight uint64) CgroupValues {
		return CgroupValues{CPUShares: shares, CPUWeight: weight, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want CgroupValues
	}{
		{"best-effort gets minimum shares", pod(ctr("a", nil, nil)), unlimited(2, 1)},
		{"best-effort ignores a pod-level-free non-QoS request", pod(ctr("a", list("ephemeral-storage", "1Gi"), nil)), unlimited(2, 1)},
		{"burstable without limits", pod(ctr("a", list("cpu", "100m", "memory", "100Mi"), nil)), unlimited(102, 17)},
		{"burstable with limits on every container", pod(
			ctr("a", list("cpu", "100m", "memory", "100Mi"), list("cpu", "200m", "memory", "200Mi")),
			ctr("b", list("cpu", "100m", "memory", "100Mi"), list("cpu", "50m", "memory", "100Mi")),
		), CgroupValues{CPUShares: 204, CPUWeight: 29, CPUQuota: 25000, CPUPeriod: 100000, MemoryMax: 300 << 20}},
		{"burstable, one container without limits: no pod limits", pod(
			ctr("a", list("cpu", "100m", "memory", "100Mi"), list("cpu", "200m", "memory", "200Mi")),
			ctr("b", list("cpu", "100m", "memory", "100Mi"), nil),
		), unlimited(204, 29)},
		{"burstable, cpu limited everywhere, memory not", pod(
			ctr("a", list("cpu", "100m"), list("cpu", "200m", "memory", "200Mi")),
			ctr("b", list("cpu", "100m"), list("cpu", "300m")),
		), CgroupValues{CPUShares: 204, CPUWeight: 29, CPUQuota: 50000, CPUPeriod: 100000, MemoryMax: -1}},
		{"guaranteed", pod(ctr("a", list("cpu", "250m", "memory", "32Mi"), list("cpu", "250m", "memory", "32Mi"))),
			CgroupValues{CPUShares: 256, CPUWeight: 35, CPUQuota: 25000, CPUPeriod: 100000, MemoryMax: 32 << 20}},
		{"guaranteed with overhead", withOverhead(pod(
			ctr("a", list("cpu", "250m", "memory", "32Mi"), list("cpu", "250m", "memory", "32Mi")),
		), list("cpu", "10m", "memory", "1Mi")),
			CgroupValues{CPUShares: 266, CPUWeight: 36, CPUQuota: 26000, CPUPeriod: 100000, MemoryMax: 33 << 20}},
		{"init container larger than app sets the limits", withInit(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), list("cpu", "100m", "memory", "32Mi")),
		), ctr("init", list("cpu", "1", "memory", "64Mi"), list("cpu", "1", "memory", "64Mi"))),
			CgroupValues{CPUShares: 1024, CPUWeight: 100, CPUQuota: 100000, CPUPeriod: 100000, MemoryMax: 64 << 20}},
		{"burstable, init container without limits: no pod limits", withInit(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), list("cpu", "200m", "memory", "64Mi")),
		), ctr("init", list("cpu", "100m"), nil)), unlimited(102, 17)},
		{"burstable, init after a limited sidecar counts as limited", withInit(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), list("cpu", "200m", "memory", "64Mi")),
		), sidecar("s", list("cpu", "100m", "memory", "32Mi"), list("cpu", "100m", "memory", "32Mi")), ctr("init", list("cpu", "100m"), nil)),
			CgroupValues{CPUShares: 204, CPUWeight: 29, CPUQuota: 30000, CPUPeriod: 100000, MemoryMax: 96 << 20}},
		{"pod-level limits declare the pod's limits", withPodLevel(pod(
			ctr("a", list("cpu", "100m"), nil),
			ctr("b", nil, nil),
		), list("cpu", "500m", "memory", "64Mi"), list("cpu", "1", "memory", "128Mi")),
			CgroupValues{CPUShares: 512, CPUWeight: 59, CPUQuota: 100000, CPUPeriod: 100000, MemoryMax: 128 << 20}},
		{"pod-level guaranteed over best-effort containers", withPodLevel(pod(ctr("a", nil, nil)),
			list("cpu", "2", "memory", "1Gi"), list("cpu", "2", "memory", "1Gi")),
			CgroupValues{CPUShares: 2048, CPUWeight: 174, CPUQuota: 200000, CPUPeriod: 100000, MemoryMax: 1 << 30}},
		{"pod-level cpu limit only", withPodLevel(pod(ctr("a", nil, nil)), list("cpu", "1"), list("cpu", "1")),
			CgroupValues{CPUShares: 1024, CPUWeight: 100, CPUQuota: 100000, CPUPeriod: 100000, MemoryMax: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, PodCgroup(tt.pod)); diff != "" {
				t.Errorf("PodCgroup (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCgroupV2(t *testing.T) {
	tests := []struct {
		name string
		v    CgroupValues
		want map[string]string
	}{
		{"limited", CgroupValues{CPUShares: 256, CPUWeight: 35, CPUQuota: 20000, CPUPeriod: 100000, MemoryMax: 33554432},
			map[string]string{"cpu.weight": "35", "cpu.max": "20000 100000", "memory.max": "33554432"}},
		{"unlimited", CgroupValues{CPUShares: 2, CPUWeight: 1, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1},
			map[string]string{"cpu.weight": "1", "cpu.max": "max 100000", "memory.max": "max"}},
		{"from a container", ContainerCgroup(&corev1.Container{Resources: corev1.ResourceRequirements{
			Requests: list("cpu", "100m", "memory", "32Mi"), Limits: list("cpu", "250m", "memory", "32Mi")}}),
			map[string]string{"cpu.weight": "17", "cpu.max": "25000 100000", "memory.max": "33554432"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.v.CgroupV2()); diff != "" {
				t.Errorf("CgroupV2 (-want +got):\n%s", diff)
			}
		})
	}
}
