package resources

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// Cases after component-helpers/resource helpers_test.go (TestPodRequests,
// TestPodLimits, sidecar cases from KEP-753).
func TestPodRequests(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.ResourceList
	}{
		{"no requests", pod(ctr("a", nil, nil)), list()},
		{"one container", pod(ctr("a", list("cpu", "100m", "memory", "32Mi"), nil)), list("cpu", "100m", "memory", "32Mi")},
		{"app containers add up", pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), nil),
			ctr("b", list("cpu", "250m"), nil),
		), list("cpu", "350m", "memory", "32Mi")},
		{"requests defaulted from limits are requests", pod(
			ctr("a", list("cpu", "1", "memory", "1Gi"), list("cpu", "1", "memory", "1Gi")),
		), list("cpu", "1", "memory", "1Gi")},
		{"limits alone are not requests (undefaulted manifest)", pod(
			ctr("a", nil, list("cpu", "1", "memory", "1Gi")),
		), list()},
		{"init container larger than app containers wins", withInit(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), nil),
		), ctr("init", list("cpu", "2", "memory", "16Mi"), nil)),
			list("cpu", "2", "memory", "32Mi")},
		{"init containers take the max, not the sum", withInit(pod(
			ctr("a", list("cpu", "100m"), nil),
		), ctr("i1", list("cpu", "1"), nil), ctr("i2", list("cpu", "2"), nil)),
			list("cpu", "2")},
		{"sidecar adds to app containers", withInit(pod(
			ctr("a", list("cpu", "1"), nil),
		), sidecar("s", list("cpu", "500m"), nil)),
			list("cpu", "1500m")},
		{"init after a sidecar runs beside it", withInit(pod(
			ctr("a", list("cpu", "1"), nil),
		), sidecar("s", list("cpu", "1"), nil), ctr("i", list("cpu", "2"), nil)),
			list("cpu", "3")},
		{"init before a sidecar runs alone", withInit(pod(
			ctr("a", list("cpu", "1"), nil),
		), ctr("i", list("cpu", "2500m"), nil), sidecar("s", list("cpu", "1"), nil)),
			list("cpu", "2500m")},
		{"sidecars accumulate for later inits", withInit(pod(
			ctr("a", list("cpu", "100m"), nil),
		), sidecar("s1", list("cpu", "1"), nil), sidecar("s2", list("cpu", "1"), nil), ctr("i", list("cpu", "1500m"), nil)),
			list("cpu", "3500m")},
		{"overhead added", withOverhead(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), nil),
		), list("cpu", "10m", "memory", "1Mi")), list("cpu", "110m", "memory", "33Mi")},
		{"overhead on a pod without requests", withOverhead(pod(ctr("a", nil, nil)), list("cpu", "10m")),
			list("cpu", "10m")},
		{"pod-level requests replace container sums", withPodLevel(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi", "ephemeral-storage", "1Gi"), nil),
			ctr("b", list("cpu", "100m"), nil),
		), list("cpu", "1", "memory", "64Mi"), nil),
			list("cpu", "1", "memory", "64Mi", "ephemeral-storage", "1Gi")},
		{"pod-level requests of one resource keep the others summed", withPodLevel(pod(
			ctr("a", list("cpu", "100m", "memory", "32Mi"), nil),
			ctr("b", list("memory", "32Mi"), nil),
		), list("memory", "128Mi"), nil),
			list("cpu", "100m", "memory", "128Mi")},
		{"pod-level unsupported resource is ignored", withPodLevel(pod(
			ctr("a", list("ephemeral-storage", "1Gi"), nil),
		), list("ephemeral-storage", "5Gi"), nil),
			list("ephemeral-storage", "1Gi")},
		{"pod-level requests plus overhead", withOverhead(withPodLevel(pod(
			ctr("a", nil, nil),
		), list("cpu", "1"), nil), list("cpu", "100m")),
			list("cpu", "1100m")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PodRequests(tt.pod)
			if diff := cmp.Diff(canonical(tt.want), canonical(got)); diff != "" {
				t.Errorf("PodRequests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodLimits(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.ResourceList
	}{
		{"no limits", pod(ctr("a", list("cpu", "1"), nil)), list()},
		{"limits add up", pod(
			ctr("a", nil, list("cpu", "1", "memory", "1Gi")),
			ctr("b", nil, list("cpu", "500m", "memory", "1Gi")),
		), list("cpu", "1500m", "memory", "2Gi")},
		{"a resource limited by one container only is listed", pod(
			ctr("a", nil, list("cpu", "1", "memory", "1Gi")),
			ctr("b", nil, list("memory", "1Gi")),
		), list("cpu", "1", "memory", "2Gi")},
		{"init container max and sidecars", withInit(pod(
			ctr("a", nil, list("cpu", "1")),
		), sidecar("s", nil, list("cpu", "1")), ctr("i", nil, list("cpu", "3"))),
			list("cpu", "4")},
		{"overhead only on set, non-zero limits", withOverhead(pod(
			ctr("a", nil, list("cpu", "1")),
		), list("cpu", "100m", "memory", "10Mi")),
			list("cpu", "1100m")},
		{"pod-level limits replace container sums", withPodLevel(pod(
			ctr("a", nil, list("cpu", "1", "memory", "1Gi")),
		), nil, list("cpu", "2")),
			list("cpu", "2", "memory", "1Gi")},
		{"pod-level requests alone keep container limits", withPodLevel(pod(
			ctr("a", nil, list("memory", "1Gi")),
		), list("cpu", "2"), nil),
			list("memory", "1Gi")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PodLimits(tt.pod)
			if diff := cmp.Diff(canonical(tt.want), canonical(got)); diff != "" {
				t.Errorf("PodLimits (-want +got):\n%s", diff)
			}
		})
	}
}

// The results must not share quantities with the pod: callers add to them.
func TestPodRequestsDoesNotAliasPod(t *testing.T) {
	p := pod(ctr("a", list("cpu", "1"), nil))
	got := PodRequests(p)
	q := got[corev1.ResourceCPU]
	q.Add(q)
	got[corev1.ResourceCPU] = q
	if c := p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU]; c.String() != "1" {
		t.Errorf("container request changed to %s", c.String())
	}
}
