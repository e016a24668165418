package podstatus

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// Waiting is why the core could not start a container in its last attempt
// (kubelet's reason cache): ErrImagePull, ImagePullBackOff,
// ErrImageNeverPull, CrashLoopBackOff, CreateContainerError,
// RunContainerError...
type Waiting struct {
	Reason  string
	Message string
}

// ReadinessFunc reports whether a running container is ready. It is the
// hook for readiness probes; without one a running container is ready.
type ReadinessFunc func(container *corev1.Container, instance runtime.ContainerStatus) bool

// Input is everything Compute needs.
type Input struct {
	Pod *corev1.Pod
	// Sandbox is the pod's sandbox, nil when it has none (yet).
	Sandbox *runtime.Sandbox
	// SandboxStopped is set once the core has finished the pod (every
	// container exited for good, kubelet's KillPod): kubelet stops the
	// sandbox then, and PodReadyToStartContainers turns False.
	SandboxStopped bool
	// Containers are the observed instances of the pod's containers, in any
	// order; the two newest of each name are used (state and lastState).
	Containers []runtime.ContainerStatus
	// Waiting holds the reason cache, by container name.
	Waiting map[string]Waiting
	// Previous is the status computed last time (nil the first time).
	Previous *corev1.PodStatus
	// HostIP is the node's IP, reported as hostIP, and as podIP for
	// hostNetwork pods.
	HostIP string
	// Ready is the readiness hook; nil means running is ready.
	Ready ReadinessFunc
	Now   time.Time
}
