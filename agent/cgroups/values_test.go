package cgroups

import (
	"math"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

func container(req, lim corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
}

func list(cpu, mem string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func pod(uid string, cs ...corev1.Container) *corev1.Pod {
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: cs}}
	p.UID = types.UID(uid)
	p.Name = uid
	p.Namespace = "default"
	return p
}

var (
	guaranteed = pod("g1", container(list("500m", "64Mi"), list("500m", "64Mi")))
	burstable  = pod("b1", container(list("250m", ""), list("", "128Mi")))
	besteffort = pod("e1", container(nil, nil))
)

// GetPodContainerName with cgroupfs naming (pkg/kubelet/cm/pod_container_manager_linux.go).
func TestPodPath(t *testing.T) {
	m := &Manager{cfg: Config{Root: "/kubepods"}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want string
	}{
		{"guaranteed under the root", guaranteed, "/kubepods/podg1"},
		{"burstable", burstable, "/kubepods/burstable/podb1"},
		{"besteffort", besteffort, "/kubepods/besteffort/pode1"},
		{"nil pod", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := m.PodPath(tc.pod); got != tc.want {
				t.Errorf("PodPath = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidUID(t *testing.T) {
	for uid, want := range map[types.UID]bool{
		"3f1c-aa": true, "": false, ".": false, "..": false, "a/b": false, "../x": false, "a\x00": false,
	} {
		if got := validUID(uid); got != want {
			t.Errorf("validUID(%q) = %v, want %v", uid, got, want)
		}
	}
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  values
		want values
	}{
		{"guaranteed pod, pids limit", podValues(guaranteed, 1024),
			values{CPUShares: 512, CPUWeight: 59, CPUQuota: 50000, CPUPeriod: 100000, MemoryMax: 64 << 20, PidsMax: 1024}},
		{"burstable pod: no quota without every cpu limit, memory from the only container", podValues(burstable, 0),
			values{CPUShares: 256, CPUWeight: 35, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: 128 << 20, PidsMax: -1}},
		{"besteffort pod: min shares, no limits", podValues(besteffort, -5),
			values{CPUShares: 2, CPUWeight: 1, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1, PidsMax: -1}},
		// node_container_manager_linux.go getCgroupConfig
		{"root: allocatable cpu and memory", rootValues(list("2", "1Gi")),
			values{CPUShares: 2048, CPUWeight: 174, MemoryMax: 1 << 30}},
		{"root: missing resources left alone", rootValues(nil), values{}},
		// qos_container_manager_linux.go setCPUCgroupConfig
		{"besteffort QoS: MinShares", besteffortValues(), values{CPUShares: 2, CPUWeight: 1}},
		{"burstable QoS: no pods", burstableValues(nil), values{CPUShares: 2, CPUWeight: 1}},
		{"burstable QoS: sum of the Burstable pods' requests only",
			burstableValues([]*corev1.Pod{guaranteed, burstable, besteffort, nil, pod("b2", container(list("750m", ""), nil))}),
			values{CPUShares: 1024, CPUWeight: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestV1Resources(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   values
		want *specs.LinuxResources
	}{
		{"pod with limits", values{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryMax: 64 << 20, PidsMax: 100},
			&specs.LinuxResources{
				CPU:    &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))},
				Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))},
				Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
			}},
		{"pod without limits: -1 is no limit in v1", values{CPUShares: 2, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1, PidsMax: -1},
			&specs.LinuxResources{
				CPU:    &specs.LinuxCPU{Shares: ptr(uint64(2)), Quota: ptr(int64(-1)), Period: ptr(uint64(100000))},
				Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))},
				Pids:   &specs.LinuxPids{Limit: ptr(int64(-1))},
			}},
		{"QoS cgroup: shares only", values{CPUShares: 2, CPUWeight: 1},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(2))}}},
		{"nothing", values{}, &specs.LinuxResources{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, v1Resources(tc.in)); diff != "" {
				t.Errorf("v1Resources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestV2Resources(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   values
		want *cgroup2.Resources
		// the files cgroup2 writes, and the controllers it enables
		controllers []string
	}{
		{"pod with limits", values{CPUShares: 512, CPUWeight: 59, CPUQuota: 50000, CPUPeriod: 100000, MemoryMax: 64 << 20, PidsMax: 100},
			&cgroup2.Resources{
				CPU:    &cgroup2.CPU{Weight: ptr(uint64(59)), Max: "50000 100000"},
				Memory: &cgroup2.Memory{Max: ptr(int64(64 << 20))},
				Pids:   &cgroup2.Pids{Max: 100},
			}, []string{"cpu", "memory", "pids"}},
		{"pod without limits: max", values{CPUShares: 2, CPUWeight: 1, CPUQuota: -1, CPUPeriod: 100000, MemoryMax: -1, PidsMax: -1},
			&cgroup2.Resources{
				CPU:    &cgroup2.CPU{Weight: ptr(uint64(1)), Max: "max 100000"},
				Memory: &cgroup2.Memory{Max: ptr(int64(math.MaxInt64))},
				Pids:   &cgroup2.Pids{Max: -1},
			}, []string{"cpu", "memory", "pids"}},
		{"root: weight and memory", values{CPUShares: 2048, CPUWeight: 174, MemoryMax: 1 << 30},
			&cgroup2.Resources{
				CPU:    &cgroup2.CPU{Weight: ptr(uint64(174))},
				Memory: &cgroup2.Memory{Max: ptr(int64(1 << 30))},
			}, []string{"cpu", "memory"}},
		{"QoS cgroup: weight only", values{CPUShares: 2, CPUWeight: 1},
			&cgroup2.Resources{CPU: &cgroup2.CPU{Weight: ptr(uint64(1))}}, []string{"cpu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := v2Resources(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("v2Resources (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.controllers, got.EnabledControllers()); diff != "" {
				t.Errorf("controllers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckRoot(t *testing.T) {
	for root, ok := range map[string]bool{
		"/kubepods": true, "/podboot-test-1/kubepods": true,
		"": false, "kubepods": false, "/": false, "/a/../b": false, "/kubepods/": false, "/sys/fs/cgroup/kubepods": false,
	} {
		if err := checkRoot(root); (err == nil) != ok {
			t.Errorf("checkRoot(%q) = %v, want ok %v", root, err, ok)
		}
	}
}
