package podstatus

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons (pkg/kubelet/status/generate.go).
const (
	ReasonPodCompleted             = "PodCompleted"
	ReasonPodFailed                = "PodFailed"
	ReasonContainersNotReady       = "ContainersNotReady"
	ReasonContainersNotInitialized = "ContainersNotInitialized"
	ReasonReadinessGatesNotReady   = "ReadinessGatesNotReady"
)

// conditions returns the kubelet-owned conditions in kubelet's order, with
// the previous status's lastTransitionTime kept when a status is unchanged
// (the status manager's updateLastTransitionTime).
func conditions(in Input, s *corev1.PodStatus) []corev1.PodCondition {
	pod := in.Pod
	all := append(append([]corev1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...)
	ready := corev1.ConditionFalse
	if in.Sandbox != nil && !in.SandboxStopped {
		ready = corev1.ConditionTrue
	}
	// Conditions not owned by kubelet (readiness gates' conditions) are
	// kept as they were.
	var out []corev1.PodCondition
	if in.Previous != nil {
		for _, c := range in.Previous.Conditions {
			if !kubeletOwned(c.Type) {
				out = append(out, c)
			}
		}
	}
	containersReady := containersReadyCondition(pod, all, s.Phase)
	out = append(out,
		corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: ready},
		initializedCondition(pod, all, s.Phase),
		podReadyCondition(pod, out, containersReady),
		containersReady,
		corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
	)
	now := metav1.NewTime(in.Now.Truncate(1e9))
	for i := range out {
		c := &out[i]
		if !kubeletOwned(c.Type) {
			continue
		}
		c.ObservedGeneration = pod.Generation
		c.LastTransitionTime = now
		if old := findCondition(in.Previous, c.Type); old != nil && old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
	}
	return out
}

func kubeletOwned(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodScheduled, corev1.PodReady, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReadyToStartContainers:
		return true
	}
	return false
}

func findCondition(s *corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	if s == nil {
		return nil
	}
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

func statusByName(statuses []corev1.ContainerStatus, name string) (corev1.ContainerStatus, bool) {
	for _, s := range statuses {
		if s.Name == name {
			return s, true
		}
	}
	return corev1.ContainerStatus{}, false
}

func containersReadyCondition(pod *corev1.Pod, statuses []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	var unknown, unready []string
	// Sidecars count as the pod's containers here, ahead of the others.
	var all []corev1.Container
	for _, c := range pod.Spec.InitContainers {
		if IsRestartableInitContainer(&c) {
			all = append(all, c)
		}
	}
	for _, c := range append(all, pod.Spec.Containers...) {
		s, ok := statusByName(statuses, c.Name)
		switch {
		case !ok:
			unknown = append(unknown, c.Name)
		case !s.Ready:
			unready = append(unready, c.Name)
		}
	}
	cond := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}
	switch {
	case phase == corev1.PodSucceeded && len(unknown) == 0:
		cond.Reason = ReasonPodCompleted
		return cond
	case phase == corev1.PodFailed:
		cond.Reason = ReasonPodFailed
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(unready) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unready status: %s", unready))
	}
	if len(msgs) > 0 {
		cond.Reason = ReasonContainersNotReady
		cond.Message = strings.Join(msgs, ", ")
		return cond
	}
	cond.Status = corev1.ConditionTrue
	return cond
}

func podReadyCondition(pod *corev1.Pod, others []corev1.PodCondition, containersReady corev1.PodCondition) corev1.PodCondition {
	cond := corev1.PodCondition{Type: corev1.PodReady, Status: containersReady.Status,
		Reason: containersReady.Reason, Message: containersReady.Message}
	if containersReady.Status != corev1.ConditionTrue {
		return cond
	}
	var msgs []string
	for _, rg := range pod.Spec.ReadinessGates {
		var found *corev1.PodCondition
		for i := range others {
			if others[i].Type == rg.ConditionType {
				found = &others[i]
			}
		}
		switch {
		case found == nil:
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", string(rg.ConditionType)))
		case found.Status != corev1.ConditionTrue:
			msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", string(rg.ConditionType), found.Status))
		}
	}
	if len(msgs) > 0 {
		return corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse,
			Reason: ReasonReadinessGatesNotReady, Message: strings.Join(msgs, ", ")}
	}
	return cond
}

func initializedCondition(pod *corev1.Pod, statuses []corev1.ContainerStatus, phase corev1.PodPhase) corev1.PodCondition {
	var unknown, incomplete []string
	for _, c := range pod.Spec.InitContainers {
		s, ok := statusByName(statuses, c.Name)
		switch {
		case !ok:
			unknown = append(unknown, c.Name)
		case !s.Ready:
			incomplete = append(incomplete, c.Name)
		}
	}
	cond := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	if phase == corev1.PodSucceeded && len(unknown) == 0 {
		cond.Reason = ReasonPodCompleted
		return cond
	}
	if anyRegularContainerStarted(pod, statuses) {
		return cond
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with unknown status: %s", unknown))
	}
	if len(incomplete) > 0 {
		msgs = append(msgs, fmt.Sprintf("containers with incomplete status: %s", incomplete))
	}
	if len(msgs) > 0 {
		cond.Status = corev1.ConditionFalse
		cond.Reason = ReasonContainersNotInitialized
		cond.Message = strings.Join(msgs, ", ")
	}
	return cond
}

// anyRegularContainerStarted is kubelet's HasAnyRegularContainerStarted.
func anyRegularContainerStarted(pod *corev1.Pod, statuses []corev1.ContainerStatus) bool {
	for _, c := range pod.Spec.Containers {
		if s, ok := statusByName(statuses, c.Name); ok && (s.State.Running != nil || s.State.Terminated != nil) {
			return true
		}
	}
	return false
}
