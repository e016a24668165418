package containerd

import (
	"testing"
	"time"

	cg1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cg2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// TestStatsFromCgroups checks the cAdvisor formulas on both cgroup
// versions (container/libcontainer/handler.go setMemoryStats).
func TestStatsFromCgroups(t *testing.T) {
	tests := []struct {
		name string
		fill func(*runtime.ContainerStats)
		want runtime.ContainerStats
	}{
		{"v1", func(s *runtime.ContainerStats) {
			fillV1(s, &cg1stats.Metrics{
				CPU:              &cg1stats.CPUStat{Usage: &cg1stats.CPUUsage{Total: 1500, User: 1000, Kernel: 500}},
				Memory:           &cg1stats.MemoryStat{Usage: &cg1stats.MemoryEntry{Usage: 10 << 20}, TotalRSS: 3 << 20, RSS: 1, TotalInactiveFile: 4 << 20, InactiveFile: 1},
				MemoryOomControl: &cg1stats.MemoryOomControl{OomKill: 2},
			})
		}, runtime.ContainerStats{CPUUsageNanoseconds: 1500, MemoryUsageBytes: 10 << 20, MemoryWorkingSetBytes: 6 << 20, MemoryRSSBytes: 3 << 20, OOMEvents: 2}},
		{"v1 without oom_control (older kernels)", func(s *runtime.ContainerStats) {
			fillV1(s, &cg1stats.Metrics{Memory: &cg1stats.MemoryStat{Usage: &cg1stats.MemoryEntry{Usage: 1 << 20}, TotalInactiveFile: 2 << 20}})
		}, runtime.ContainerStats{MemoryUsageBytes: 1 << 20}},
		{"v2", func(s *runtime.ContainerStats) {
			fillV2(s, &cg2stats.Metrics{
				CPU:          &cg2stats.CPUStat{UsageUsec: 7},
				Memory:       &cg2stats.MemoryStat{Usage: 10 << 20, Anon: 3 << 20, InactiveFile: 4 << 20},
				MemoryEvents: &cg2stats.MemoryEvents{Oom: 5, OomKill: 1},
			})
		}, runtime.ContainerStats{CPUUsageNanoseconds: 7000, MemoryUsageBytes: 10 << 20, MemoryWorkingSetBytes: 6 << 20, MemoryRSSBytes: 3 << 20, OOMEvents: 1}},
		{"v2 empty", func(s *runtime.ContainerStats) { fillV2(s, &cg2stats.Metrics{}) }, runtime.ContainerStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got runtime.ContainerStats
			tt.fill(&got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIntegrationContainerStats runs a busy and an idle container and reads
// their stats from the real cgroups.
func TestIntegrationContainerStats(t *testing.T) {
	h := newHarness(t)
	img := h.importImage(t, "busybox:1.36")
	pod := testPod("stats")
	sb := h.sandbox(t, pod)
	busy := h.start(t, h.containerConfig(pod, sb, img, corev1.Container{Name: "busy", Command: []string{"sh", "-c", "while true; do :; done"}}))
	idle := h.start(t, h.containerConfig(pod, sb, img, corev1.Container{Name: "idle", Command: []string{"sleep", "3600"}}))
	gone := h.start(t, h.containerConfig(pod, sb, img, corev1.Container{Name: "gone", Command: []string{"true"}}))
	h.waitExited(t, gone.ID)
	time.Sleep(500 * time.Millisecond)

	stats, err := h.r.ContainerStats(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]runtime.ContainerStats{}
	for _, s := range stats {
		byName[s.Name] = s
	}
	if _, ok := byName["gone"]; ok {
		t.Errorf("an exited container has stats: %+v", byName["gone"])
	}
	for _, c := range []runtime.ContainerStatus{busy, idle} {
		s, ok := byName[c.Name]
		if !ok {
			t.Fatalf("no stats for container %s; got %+v", c.Name, stats)
		}
		if s.ID != c.ID || s.Pod != pod || s.Image != img.Ref || s.StartedAt.IsZero() || time.Since(s.Timestamp) > time.Minute {
			t.Errorf("%s: identity = %+v", c.Name, s)
		}
		if s.MemoryUsageBytes == 0 || s.MemoryWorkingSetBytes == 0 || s.MemoryWorkingSetBytes > s.MemoryUsageBytes {
			t.Errorf("%s: memory usage %d, working set %d", c.Name, s.MemoryUsageBytes, s.MemoryWorkingSetBytes)
		}
	}
	if cpu := byName["busy"].CPUUsageNanoseconds; cpu < uint64(100*time.Millisecond) {
		t.Errorf("busy container used %v CPU in 0.5 s, want more than 100ms", time.Duration(cpu))
	}
}
