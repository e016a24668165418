package probe

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Prober runs probes of every kind. Its zero value probes over the host's
// network and cannot run exec probes.
type Prober struct {
	// Exec runs exec probes in the container; nil makes an exec probe
	// an error.
	Exec Execer
	// UserAgent is sent by httpGet and grpc probes unless the probe's
	// httpHeaders set one: kubelet's "kube-probe/<major>.<minor>" (see
	// UserAgent); "" sends Go's default.
	UserAgent string
	// Dial opens the connections of httpGet, tcpSocket and grpc probes;
	// nil dials from the host as kubelet's ProbeDialer does.
	Dial DialFunc
}

// Probe runs h once against t with timeout (the probe's timeoutSeconds;
// 0 is none). output is what kubelet puts after "Liveness probe failed: "
// (or "... warning: "); err is a probe that could not run at all
// (kubelet's "probe errored"), e.g. a named port the container does not
// have. Unlike kubelet's prober, Probe does not retry an errored probe:
// kubelet's runProbeWithRetries (3 tries) belongs to the caller.
func (p *Prober) Probe(ctx context.Context, h *corev1.ProbeHandler, t Target, timeout time.Duration) (Result, string, error) {
	switch {
	case h != nil && h.Exec != nil:
		return p.probeExec(ctx, h.Exec, t, timeout)
	case h != nil && h.HTTPGet != nil:
		return p.probeHTTP(ctx, h.HTTPGet, t, timeout)
	case h != nil && h.TCPSocket != nil:
		return p.probeTCP(ctx, h.TCPSocket, t, timeout)
	case h != nil && h.GRPC != nil:
		return p.probeGRPC(ctx, h.GRPC, t, timeout)
	default:
		// prober.go runProbe's default case.
		return Unknown, "", fmt.Errorf("missing probe handler for %s:%s", FormatPod(t.Pod), containerName(t.Container))
	}
}

// dialer is Dial, or kubelet's ProbeDialer.
func (p *Prober) dialer() DialFunc {
	if p.Dial != nil {
		return p.Dial
	}
	return DefaultDial
}

// DefaultDial dials as kubelet's probe.ProbeDialer does: SO_LINGER of one
// second, so that the many short connections of probes do not pile up in
// TIME-WAIT for the kernel's default 60 s.
func DefaultDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{
		Control: func(network, address string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
	return d.DialContext(ctx, network, addr)
}

// ResolvePort is kubelet's port resolution (probe.ResolveContainerPort):
// a number, or the name of one of the container's ports; the result must
// be a valid port number.
func ResolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	n := -1
	switch port.Type {
	case intstr.Int:
		n = port.IntValue()
	case intstr.String:
		var err error
		if n, err = findPortByName(c, port.StrVal); err != nil {
			return n, err
		}
	default:
		return n, fmt.Errorf("intOrString had no kind: %+v", port)
	}
	if n > 0 && n < 65536 {
		return n, nil
	}
	return n, fmt.Errorf("invalid port number: %v", n)
}

func findPortByName(c *corev1.Container, name string) (int, error) {
	if c != nil {
		for _, p := range c.Ports {
			if p.Name == name {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("port %q not found", name)
}

// UserAgent is kubelet's User-Agent for purpose ("probe" for probes,
// "lifecycle" for hooks) on a kubelet of version kubeletVersion
// ("v1.37.2"): "kube-probe/1.37".
func UserAgent(purpose, kubeletVersion string) string {
	v := strings.TrimPrefix(kubeletVersion, "v")
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	return fmt.Sprintf("kube-%s/%s.%s", purpose, major, minor)
}

// FormatPod names a pod as kubelet's format.Pod does in messages:
// name_namespace(uid).
func FormatPod(pod *corev1.Pod) string {
	if pod == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

func containerName(c *corev1.Container) string {
	if c == nil {
		return ""
	}
	return c.Name
}
