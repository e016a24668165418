package podstatus

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// ShouldContainerBeRestarted is kubelet's rule
// (pkg/kubelet/container/helpers.go) for whether a container that is not
// running should be started again, given its newest instance (nil when it
// has none).
func ShouldContainerBeRestarted(pod *corev1.Pod, latest *runtime.ContainerStatus) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	if latest == nil {
		return true
	}
	switch latest.State {
	case runtime.ContainerRunning:
		return false
	case runtime.ContainerUnknown, runtime.ContainerCreated:
		return true
	}
	if latest.Init && IsRestartableInitContainer(initContainer(pod, latest.Name)) {
		// A sidecar is restarted whatever the pod's restartPolicy.
		return true
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return latest.ExitCode != 0
	}
	return true
}

// Latest returns the newest instance of the named container (by creation
// time, then attempt), nil when there is none.
func Latest(instances []runtime.ContainerStatus, name string) *runtime.ContainerStatus {
	var latest *runtime.ContainerStatus
	for i := range instances {
		c := &instances[i]
		if c.Name != name {
			continue
		}
		if latest == nil || newer(c, latest) {
			latest = c
		}
	}
	return latest
}

func newer(a, b *runtime.ContainerStatus) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.Attempt > b.Attempt
}

// IsInitContainerFailed is kubelet's isInitContainerFailed.
func IsInitContainerFailed(c *runtime.ContainerStatus) bool {
	if c.OOMKilled || c.Reason == "OOMKilled" {
		return true
	}
	if c.State == runtime.ContainerExited && c.ExitCode != 0 {
		return true
	}
	return c.State == runtime.ContainerUnknown
}

// IsRestartableInitContainer is kubelet's podutil.IsRestartableInitContainer:
// an init container with restartPolicy Always (a sidecar).
func IsRestartableInitContainer(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func initContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
