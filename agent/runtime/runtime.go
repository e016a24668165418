// Package runtime is the contract between the pod agent's core and a
// container runtime: what a pod sandbox and a container are, what the core
// asks of the runtime, and what it observes back. It has no dependency on
// containerd; runtime/containerd implements it for real and runtime/fake in
// memory for tests.
//
// The shape follows kubelet's kubecontainer package: sandboxes hold a pod's
// shared namespaces, containers are started and stopped individually, and
// the core re-lists the runtime to learn what is there (so an agent that was
// killed adopts what it finds).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodRef names the pod a sandbox or container belongs to.
type PodRef struct {
	UID       types.UID
	Namespace string
	Name      string
}

func (p PodRef) String() string { return p.Namespace + "/" + p.Name + " (" + string(p.UID) + ")" }

// SandboxConfig is what the core asks for when it creates a pod's sandbox.
type SandboxConfig struct {
	Pod      PodRef
	Hostname string // pod.spec.hostname, else pod name (truncated to 63)
	// HostNetwork pods use the host's network namespace (and UTS namespace,
	// as kubelet does).
	HostNetwork bool
	HostIPC     bool
	// CgroupParent is the pod's cgroup (cgroupfs path, e.g.
	// /kubepods/burstable/pod<uid>) under which every container's cgroup
	// is made; "" leaves containers where the runtime puts them.
	CgroupParent string
	// ResolvConf is the pod's /etc/resolv.conf (kubelet's DNS config for
	// the pod); nil leaves the image's.
	ResolvConf []byte
	// HostPorts are the pod's container ports that set a hostPort: the
	// pod network publishes them on the node's addresses.
	HostPorts []corev1.ContainerPort
	// Domain is the pod's domain (<subdomain>.<ns>.svc.cluster.local) for
	// its /etc/hosts entry, "" for none; HostAliases are appended to it.
	Domain      string
	HostAliases []corev1.HostAlias
}

// Sandbox is a pod's shared environment: pinned network, IPC and UTS
// namespaces that every container of the pod joins.
type Sandbox struct {
	Pod      PodRef
	Hostname string
	NetNS    string // path of the pinned network namespace ("" = host)
	IPCNS    string // "" = host
	UTSNS    string // "" = host
	IP       string // pod IP, "" until the pod network (CNI) sets one
	// CgroupParent is SandboxConfig's, kept so that containers started
	// after an agent restart land in the same pod cgroup.
	CgroupParent string
	CreatedAt    time.Time
}

// ContainerConfig is everything needed to create and start one container.
type ContainerConfig struct {
	Pod     PodRef
	Sandbox Sandbox
	// Spec is the container as defaulted and validated by the manifest
	// package: image, command, args, env (value only), workingDir, ports,
	// securityContext.
	Spec corev1.Container
	// PodSecurityContext supplies runAsUser/runAsGroup defaults.
	PodSecurityContext *corev1.PodSecurityContext
	Init               bool
	// Attempt is the restart count of this container: 0 for the first
	// instance. It names the log file: LogDir/<Attempt>.log.
	Attempt int32
	// LogDir is <state>/pods/<ns>_<name>_<uid>/<container>.
	LogDir string
	Image  Image // as returned by EnsureImage
	// TerminationGracePeriod is used when the container is stopped.
	TerminationGracePeriod time.Duration
	// Resources are the container's cgroup settings and OOM score, as
	// kubelet computes them for the CRI (LinuxContainerResources); nil
	// leaves the runtime's defaults.
	Resources *ContainerResources
	// Mounts are the container's volume mounts (kubelet's makeMounts), in
	// the order of its volumeMounts.
	Mounts []Mount
}

// Mount is a bind mount of a node path into a container, CRI's Mount with
// private propagation (the only one podboot offers).
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// ContainerResources is what kubelet's generateLinuxContainerResources asks
// of the runtime for one container.
type ContainerResources struct {
	CPUShares uint64 // cgroup v1 cpu.shares; the runtime converts it for v2
	CPUQuota  int64  // µs per CPUPeriod; <= 0 = no limit
	CPUPeriod uint64 // µs
	// MemoryLimit is in bytes; <= 0 = no limit.
	MemoryLimit int64
	OOMScoreAdj int
}

// Image is a local image ready to run.
type Image struct {
	// Ref is the normalized reference, e.g. docker.io/library/busybox:1.36.
	Ref string
	// ID is what kubelet reports as imageID: repo@sha256:<manifest digest>.
	ID string
	// StopSignal is the image config's STOPSIGNAL, "" for SIGTERM.
	StopSignal string
}

// ContainerState is the runtime's view of a container's lifecycle.
type ContainerState string

const (
	ContainerCreated ContainerState = "created" // created, never started
	ContainerRunning ContainerState = "running"
	ContainerExited  ContainerState = "exited"
	ContainerUnknown ContainerState = "unknown"
)

// ContainerStatus is one container instance as observed in the runtime.
// Instances are identified by ID; a restart creates a new instance with
// Attempt+1. The runtime keeps the latest exited instance of each container
// so its exit code, times and log stay observable.
type ContainerStatus struct {
	ID         string // runtime ID; status reports it as containerd://<ID>
	Pod        PodRef
	Name       string
	Attempt    int32
	Init       bool
	State      ContainerState
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int32
	// OOMKilled is set when the kernel OOM killer killed a process of the
	// container (containerd's /tasks/oom event), even if PID 1 survived.
	OOMKilled bool
	// Reason and Message are set by the runtime only for failures it knows
	// better than an exit code, e.g. "StartError" when the process could not
	// be started (exit code 128, as containerd's CRI reports).
	Reason  string
	Message string
	Image   Image
}

// EventType says what changed in the runtime.
type EventType string

const (
	EventContainerExited EventType = "exited"
	EventContainerOOM    EventType = "oom"
)

// Event tells the core that a pod needs syncing now rather than at the next
// relist.
type Event struct {
	Type        EventType
	ContainerID string
	PodUID      types.UID
}

// Runtime is what the pod agent needs from a container runtime. All methods
// are safe for concurrent use. Errors name the object and wrap the cause.
type Runtime interface {
	// EnsureImage makes image available locally according to policy and
	// returns it. It fails with ErrImageNeverPull when policy is Never and
	// the image is absent, and with a *PullError when a pull fails.
	EnsureImage(ctx context.Context, image string, policy corev1.PullPolicy) (Image, error)

	// RunSandbox creates the pod's sandbox (idempotent: an existing sandbox
	// for the same pod UID is returned as is).
	RunSandbox(ctx context.Context, cfg SandboxConfig) (Sandbox, error)
	// RemoveSandbox removes a sandbox whose containers are all removed;
	// removing one that does not exist is not an error.
	RemoveSandbox(ctx context.Context, pod PodRef) error
	ListSandboxes(ctx context.Context) ([]Sandbox, error)

	// StartContainer creates and starts a container. When creation succeeds
	// but the start fails, the instance remains, exited with Reason
	// "StartError", and the error is returned too.
	StartContainer(ctx context.Context, cfg ContainerConfig) (ContainerStatus, error)
	// StopContainer sends the image's stop signal (else SIGTERM), waits up
	// to grace, then SIGKILLs. Stopping an exited container is a no-op.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer deletes a stopped instance and its log files
	// (kubelet removes a container's log with the container).
	RemoveContainer(ctx context.Context, id string) error
	// ListContainers returns every instance this agent created, including
	// ones left by an earlier run of the agent.
	ListContainers(ctx context.Context) ([]ContainerStatus, error)

	// Events streams container exits and OOM kills until ctx ends.
	Events(ctx context.Context) (<-chan Event, error)
}

// ErrImageNeverPull is returned by EnsureImage when the image is not present
// and imagePullPolicy is Never (kubelet's reason ErrImageNeverPull).
var ErrImageNeverPull = errors.New("image is not present with pull policy of Never")

// PullError is a failed image pull (kubelet's reason ErrImagePull, then
// ImagePullBackOff while waiting to retry).
type PullError struct {
	Image string
	Err   error
	// RegistryUnreachable: no registry answered, neither a mirror nor the
	// image's own: every request failed to connect (DNS failure, refused,
	// no route, timeout) or connected and got nothing back in time. A
	// registry that answered at all (not found, unauthorized, a TLS
	// certificate error) makes it false. The core may then run the image
	// already in the store (an offline board).
	RegistryUnreachable bool
}

func (e *PullError) Error() string {
	return fmt.Sprintf("failed to pull image %q: %v", e.Image, e.Err)
}

func (e *PullError) Unwrap() error { return e.Err }

// ContainerStats is one running container's resource usage, read from its
// cgroup, with what kubelet's cAdvisor figures mean.
type ContainerStats struct {
	Pod   PodRef
	Name  string // the container's name in the pod
	ID    string // runtime ID
	Image string // image reference it runs
	// Timestamp is when the figures were read.
	Timestamp time.Time
	// StartedAt is when the container started.
	StartedAt time.Time
	// CPUUsageNanoseconds is cumulative CPU time (user + system).
	CPUUsageNanoseconds uint64
	// MemoryUsageBytes is the cgroup's memory usage, page cache included.
	MemoryUsageBytes uint64
	// MemoryWorkingSetBytes is usage minus inactive file pages (0 when
	// they exceed it), as cAdvisor computes it: what the OOM killer and
	// kubelet's eviction look at.
	MemoryWorkingSetBytes uint64
	// MemoryRSSBytes is anonymous memory (v1 total_rss, v2 anon).
	MemoryRSSBytes uint64
	// OOMEvents counts OOM kills in the cgroup (v2 memory.events oom_kill,
	// v1 memory.oom_control oom_kill where the kernel has it).
	OOMEvents uint64
}

// StatsReader reads the running containers' usage. It is separate from
// Runtime because only metrics need it; runtime/containerd and runtime/fake
// implement both.
type StatsReader interface {
	// ContainerStats returns the stats of every running container this
	// agent created.
	ContainerStats(ctx context.Context) ([]ContainerStats, error)
}
