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

// ProbeResults are the prober's latest results by runtime container ID
// (no "containerd://"): ok is false while a probe has no result yet.
type ProbeResults interface {
	Readiness(containerID string) (success, ok bool)
	Startup(containerID string) (success, ok bool)
}

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
	// Probes gives the readiness and startup probes' results; nil: no
	// probe has run, so a running container is started and ready unless it
	// has a probe of that kind.
	Probes ProbeResults
	// AgentStarted is when this agent started: a container that was
	// running before it and showed started or ready in Previous keeps that
	// until its probe's first result (kubelet's behaviour on a kubelet
	// restart), so adopting pods does not flap their READY column.
	AgentStarted time.Time
	Now          time.Time
}
