package resources

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Cases after pkg/apis/core/v1/helper/qos/qos_test.go TestComputePodQOS.
func TestQOSClass(t *testing.T) {
	const (
		guaranteed = corev1.PodQOSGuaranteed
		burstable  = corev1.PodQOSBurstable
		bestEffort = corev1.PodQOSBestEffort
	)
	full := list("cpu", "100m", "memory", "32Mi")
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"no resources", pod(ctr("a", nil, nil)), bestEffort},
		{"no containers", pod(), bestEffort},
		{"only a non-QoS resource", pod(ctr("a", list("ephemeral-storage", "1Gi"), list("ephemeral-storage", "1Gi"))), bestEffort},
		{"requests equal limits (defaulted shape)", pod(ctr("a", full, full)), guaranteed},
		{"limits only (undefaulted shape)", pod(ctr("a", nil, full)), burstable},
		{"two guaranteed containers", pod(ctr("a", full, full), ctr("b", list("cpu", "1", "memory", "1Gi"), list("cpu", "1", "memory", "1Gi"))), guaranteed},
		{"request below limit", pod(ctr("a", list("cpu", "50m", "memory", "32Mi"), full)), burstable},
		{"cpu only", pod(ctr("a", list("cpu", "1"), list("cpu", "1"))), burstable},
		{"memory only", pod(ctr("a", list("memory", "1Gi"), list("memory", "1Gi"))), burstable},
		{"requests only", pod(ctr("a", full, nil)), burstable},
		{"guaranteed and best-effort containers", pod(ctr("a", full, full), ctr("b", nil, nil)), burstable},
		{"best-effort and burstable containers", pod(ctr("a", nil, nil), ctr("b", full, nil)), burstable},
		{"init container without limits breaks Guaranteed", withInit(pod(ctr("a", full, full)), ctr("i", nil, nil)), burstable},
		{"init container with unequal limits breaks Guaranteed", withInit(pod(ctr("a", full, full)), ctr("i", list("cpu", "10m", "memory", "32Mi"), full)), burstable},
		{"guaranteed init and app containers", withInit(pod(ctr("a", full, full)), sidecar("s", full, full)), guaranteed},
		{"1000m equals 1", pod(ctr("a", list("cpu", "1000m", "memory", "1Gi"), list("cpu", "1", "memory", "1024Mi"))), guaranteed},
		{"extra non-QoS request keeps Guaranteed", pod(ctr("a", list("cpu", "1", "memory", "1Gi", "ephemeral-storage", "1Gi"), list("cpu", "1", "memory", "1Gi"))), guaranteed},
		{"pod-level guaranteed overrides best-effort containers", withPodLevel(pod(ctr("a", nil, nil)), full, full), guaranteed},
		{"pod-level burstable overrides guaranteed containers", withPodLevel(pod(ctr("a", full, full)), full, nil), burstable},
		{"pod-level limits only", withPodLevel(pod(ctr("a", nil, nil)), nil, full), burstable},
		{"pod-level cpu only", withPodLevel(pod(ctr("a", full, full)), list("cpu", "1"), list("cpu", "1")), burstable},
		{"status qosClass is kept", func() *corev1.Pod {
			p := pod(ctr("a", nil, nil))
			p.Status.QOSClass = guaranteed
			return p
		}(), guaranteed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := QOSClass(tt.pod); got != tt.want {
				t.Errorf("QOSClass = %s, want %s", got, tt.want)
			}
		})
	}
}
