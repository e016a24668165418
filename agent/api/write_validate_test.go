package api

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestPodSpecUpdateErrors: the API server's ValidatePodUpdate rule on the
// spec, case by case.
func TestPodSpecUpdateErrors(t *testing.T) {
	base := func() *corev1.PodSpec {
		return &corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "app", Image: "busybox:1.36"}},
			InitContainers:                []corev1.Container{{Name: "init", Image: "busybox:1.36"}},
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			ActiveDeadlineSeconds:         ptr(int64(100)),
			TerminationGracePeriodSeconds: ptr(int64(-1)),
		}
	}
	const forbidden = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
	tests := []struct {
		name string
		edit func(s *corev1.PodSpec)
		want []string // error strings; the Forbidden one up to its diff
	}{
		{name: "nothing", edit: func(s *corev1.PodSpec) {}},
		{name: "images", edit: func(s *corev1.PodSpec) {
			s.Containers[0].Image, s.InitContainers[0].Image = "busybox:1.37", "alpine"
		}},
		{name: "toleration added", edit: func(s *corev1.PodSpec) {
			s.Tolerations = append(s.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}},
		{name: "toleration seconds", edit: func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
		}, want: []string{"spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"}},
		{name: "deadline lowered", edit: func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr(int64(50)) }},
		{name: "deadline raised", edit: func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr(int64(200)) },
			want: []string{"spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"}},
		{name: "deadline removed", edit: func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = nil },
			want: []string{"spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"}},
		{name: "negative grace to 1", edit: func(s *corev1.PodSpec) { s.TerminationGracePeriodSeconds = ptr(int64(1)) }},
		{name: "negative grace to 5", edit: func(s *corev1.PodSpec) { s.TerminationGracePeriodSeconds = ptr(int64(5)) }, want: []string{forbidden}},
		{name: "empty image", edit: func(s *corev1.PodSpec) { s.Containers[0].Image = "" },
			want: []string{"spec.containers[0].image: Required value"}},
		{name: "image with a space", edit: func(s *corev1.PodSpec) { s.Containers[0].Image = "busybox " },
			want: []string{`spec.containers[0].image: Invalid value: "busybox ": must not have leading or trailing whitespace`}},
		{name: "container removed", edit: func(s *corev1.PodSpec) { s.InitContainers = nil },
			want: []string{"spec.initContainers: Forbidden: pod updates may not add or remove containers"}},
		{name: "command", edit: func(s *corev1.PodSpec) { s.Containers[0].Command = []string{"true"} }, want: []string{forbidden}},
		{name: "node", edit: func(s *corev1.PodSpec) { s.NodeName = "elsewhere" }, want: []string{forbidden}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, spec := base(), base()
			tt.edit(spec)
			var got []string
			for _, e := range podSpecUpdateErrors(spec, old) {
				s := e.Error()
				if strings.HasPrefix(s, forbidden) {
					if !strings.Contains(s, "\n@@ ") {
						t.Errorf("the Forbidden error has no diff: %q", s)
					}
					s = forbidden
				}
				got = append(got, s)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
