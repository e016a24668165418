package resources

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Cases after pkg/kubelet/qos/policy_test.go TestGetContainerOOMScoreAdjust.
func TestOOMScoreAdj(t *testing.T) {
	const capacity = 4000000000 // policy_test.go's standardMemoryAmount
	full := list("cpu", "100m", "memory", "1G")
	burstable := func(memReq string) corev1.Container {
		return ctr("app", list("memory", memReq), nil)
	}
	critical := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.PriorityClassName = "system-node-critical"
		return p
	}
	podLevelBurstable := withPodLevel(pod(
		ctr("a", list("memory", "400M"), nil),
		ctr("b", nil, nil),
	), list("memory", "2400M"), nil)
	tests := []struct {
		name      string
		pod       *corev1.Pod
		container int // index into the app containers, or -1-i for init container i
		capacity  int64
		want      int
	}{
		{"best-effort", pod(ctr("app", nil, nil)), 0, capacity, 1000},
		{"guaranteed", pod(ctr("app", full, full)), 0, capacity, -997},
		{"burstable 10%", pod(burstable("400M")), 0, capacity, 900},
		{"burstable 50%", pod(burstable("2G")), 0, capacity, 500},
		{"burstable at capacity clamps above guaranteed", pod(burstable("4G")), 0, capacity, 3},
		{"burstable above capacity clamps above guaranteed", pod(burstable("8G")), 0, capacity, 3},
		{"burstable with a tiny request stays below best-effort", pod(burstable("1")), 0, capacity, 999},
		{"burstable cpu only", pod(ctr("app", list("cpu", "100m"), nil)), 0, capacity, 999},
		{"system-node-critical best-effort", critical(pod(ctr("app", nil, nil))), 0, capacity, -997},
		{"system-cluster-critical is not protected", func() *corev1.Pod {
			p := pod(ctr("app", nil, nil))
			p.Spec.PriorityClassName = "system-cluster-critical"
			return p
		}(), 0, capacity, 1000},
		{"sidecar smaller than regular takes the smallest regular's score", withInit(pod(
			burstable("2G"), ctr("b", list("memory", "1G"), nil),
		), sidecar("s", list("memory", "400M"), nil)), -1, capacity, 750},
		{"sidecar larger than regular keeps its own score", withInit(pod(
			burstable("400M"),
		), sidecar("s", list("memory", "2G"), nil)), -1, capacity, 500},
		{"sidecar without request matches the regular container", withInit(pod(
			burstable("1G"),
		), sidecar("s", nil, nil)), -1, capacity, 750},
		{"regular init container is scored on its own request", withInit(pod(
			burstable("2G"),
		), ctr("init", list("memory", "400M"), nil)), -1, capacity, 900},
		// 2400M pod request - 400M claimed = 2000M shared by 2 containers.
		{"pod-level remainder shared: container with request", podLevelBurstable, 0, capacity, 650},
		{"pod-level remainder shared: container without request", podLevelBurstable, 1, capacity, 750},
		{"pod-level remainder shared with init containers too", withInit(withPodLevel(pod(
			ctr("a", nil, nil),
		), list("memory", "2G"), nil), ctr("init", nil, nil)), 0, capacity, 750},
		{"pod-level sidecar takes the regular minimum plus share", withInit(withPodLevel(pod(
			ctr("a", list("memory", "1G"), nil),
		), list("memory", "3G"), nil), sidecar("s", nil, nil)), -1, capacity, 500},
		{"pod-level guaranteed", withPodLevel(pod(ctr("a", nil, nil)), full, full), 0, capacity, -997},
		{"no capacity known", pod(burstable("1G")), 0, 0, 999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *corev1.Container
			if tt.container >= 0 {
				c = &tt.pod.Spec.Containers[tt.container]
			} else {
				c = &tt.pod.Spec.InitContainers[-1-tt.container]
			}
			if got := OOMScoreAdj(tt.pod, c, tt.capacity); got != tt.want {
				t.Errorf("OOMScoreAdj = %d, want %d", got, tt.want)
			}
		})
	}
}
