package podstatus

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/resources"
)

// Compute returns the pod's status as kubelet would publish it.
func Compute(in Input) corev1.PodStatus {
	pod := in.Pod
	var prev corev1.PodStatus
	if in.Previous != nil {
		prev = *in.Previous
	}
	s := corev1.PodStatus{
		QOSClass:           resources.QOSClass(pod),
		ObservedGeneration: pod.Generation,
	}
	s.InitContainerStatuses = containerStatuses(in, pod.Spec.InitContainers, prev.InitContainerStatuses, true)
	s.ContainerStatuses = containerStatuses(in, pod.Spec.Containers, prev.ContainerStatuses, false)
	if len(s.InitContainerStatuses) == 0 {
		s.InitContainerStatuses = nil
	}
	s.Phase = phase(pod, append(append([]corev1.ContainerStatus{}, s.ContainerStatuses...), s.InitContainerStatuses...))
	// Pods never leave a terminal phase.
	if !terminal(s.Phase) && terminal(prev.Phase) {
		s.Phase = prev.Phase
	}
	if s.Phase == prev.Phase {
		s.Reason, s.Message = prev.Reason, prev.Message
	}
	s.Conditions = conditions(in, &s)

	if in.HostIP != "" {
		s.HostIP = in.HostIP
		s.HostIPs = []corev1.HostIP{{IP: in.HostIP}}
	}
	switch {
	case pod.Spec.HostNetwork && in.HostIP != "":
		s.PodIP = in.HostIP
	case in.Sandbox != nil:
		s.PodIP = in.Sandbox.IP
	}
	if s.PodIP != "" {
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}

	if prev.StartTime != nil && !prev.StartTime.IsZero() {
		s.StartTime = prev.StartTime.DeepCopy()
	} else {
		t := metav1.NewTime(in.Now.Truncate(1e9))
		s.StartTime = &t
	}
	return s
}
