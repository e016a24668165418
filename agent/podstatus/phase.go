package podstatus

import (
	corev1 "k8s.io/api/core/v1"
)

// phase is kubelet's getPhase for a static pod (whose phase is never forced
// terminal) with the ContainerRestartRules gate off: init container
// failures fail the pod under restartPolicy Never; otherwise the app
// containers decide. Sidecars (restartable init containers) keep the pod
// Pending until started, count as running while they run, and are ignored
// once terminated, so they never keep a finished pod from completing.
// podHasInitialized is kubelet's HasAnyRegularContainerStarted.
func phase(pod *corev1.Pod, statuses []corev1.ContainerStatus) corev1.PodPhase {
	byName := make(map[string]*corev1.ContainerStatus, len(statuses))
	for i := range statuses {
		byName[statuses[i].Name] = &statuses[i]
	}
	podHasInitialized := anyRegularContainerStarted(pod, statuses)
	pendingInit, failedInit, pendingSidecars := 0, 0, 0
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for _, c := range pod.Spec.InitContainers {
		if !IsRestartableInitContainer(&c) {
			continue
		}
		s, ok := byName[c.Name]
		switch {
		case !ok:
			unknown++
		case s.State.Running != nil:
			if s.Started == nil || !*s.Started {
				pendingSidecars++
			}
			running++
		case s.State.Terminated != nil:
			// Terminated sidecars are ignored.
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated == nil {
				pendingSidecars++
				waiting++
			}
		default:
			pendingSidecars++
			unknown++
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if IsRestartableInitContainer(&c) {
			continue
		}
		s, ok := byName[c.Name]
		switch {
		case !ok:
			pendingInit++
		case s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil:
			if s.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case s.State.Waiting != nil:
			if t := s.LastTerminationState.Terminated; t != nil {
				if t.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}

	for _, c := range pod.Spec.Containers {
		s, ok := byName[c.Name]
		switch {
		case !ok:
			unknown++
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}

	if failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0, pendingSidecars > 0 && !podHasInitialized, waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	default:
		return corev1.PodPending
	}
}

func terminal(p corev1.PodPhase) bool {
	return p == corev1.PodSucceeded || p == corev1.PodFailed
}
