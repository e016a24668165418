package probe

import (
	"context"
	"net"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// Result is one probe's outcome (kubelet's probe.Result).
type Result string

const (
	Success Result = "success"
	Warning Result = "warning" // success, with a warning (a redirect to another host)
	Failure Result = "failure"
	Unknown Result = "unknown"
)

// Execer runs cmd in running container id; a non-zero exit is a
// *runtime.ExitError; when ctx ends the process is killed and Exec returns
// ctx's error. agent/runtime/containerd's *Runtime satisfies it.
type Execer interface {
	Exec(ctx context.Context, id string, cmd []string, sio runtime.StreamIO) error
}

// DialFunc dials like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Target is what a probe or a hook runs against.
type Target struct {
	Pod         *corev1.Pod
	Container   *corev1.Container
	ContainerID string // runtime ID, without "containerd://"
	PodIP       string // status.podIP; the default host of httpGet/tcpSocket/grpc
}
