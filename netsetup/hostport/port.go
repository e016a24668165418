package hostport

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Port is one published port: HostIP:HostPort on the board forwarded to
// the pod's IP at ContainerPort.
type Port struct {
	Protocol      corev1.Protocol // TCP or UDP
	HostPort      int32
	ContainerPort int32
	// HostIP restricts the mapping to one of the board's addresses; the
	// zero Addr (or an unspecified one) means every local address.
	HostIP netip.Addr
}

func (p Port) String() string {
	host := "*"
	if !p.anyHost() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("%s %s:%d->%d", p.Protocol, host, p.HostPort, p.ContainerPort)
}

func (p Port) anyHost() bool { return !p.HostIP.IsValid() || p.HostIP.IsUnspecified() }

// PodPorts are the ports of pod's containers that publish a hostPort, as
// kubelet hands them to the CNI portmap plugin: ports without a hostPort are
// not published, an empty protocol is TCP (the API server's default).
// A bad port is an error that names the container and the port.
func PodPorts(pod *corev1.Pod) ([]Port, error) {
	if pod == nil {
		return nil, errors.New("pod ports: nil pod")
	}
	var out []Port
	var errs []error
	add := func(containers []corev1.Container) {
		for _, c := range containers {
			for _, cp := range c.Ports {
				if cp.HostPort == 0 {
					continue
				}
				p, err := FromContainerPort(cp)
				if err != nil {
					errs = append(errs, fmt.Errorf("pod %s/%s container %q: %w", pod.Namespace, pod.Name, c.Name, err))
					continue
				}
				out = append(out, p)
			}
		}
	}
	add(pod.Spec.InitContainers) // sidecars (restartable init containers) may publish ports
	add(pod.Spec.Containers)
	return out, errors.Join(errs...)
}

// FromContainerPort converts and checks one corev1.ContainerPort.
func FromContainerPort(cp corev1.ContainerPort) (Port, error) {
	p := Port{Protocol: cp.Protocol, HostPort: cp.HostPort, ContainerPort: cp.ContainerPort}
	if p.Protocol == "" {
		p.Protocol = corev1.ProtocolTCP
	}
	if cp.HostIP != "" {
		a, err := netip.ParseAddr(cp.HostIP)
		if err != nil {
			return Port{}, fmt.Errorf("hostPort %d: hostIP %q: %w", cp.HostPort, cp.HostIP, err)
		}
		p.HostIP = a.Unmap()
	}
	if err := p.validate(); err != nil {
		return Port{}, err
	}
	return p, nil
}

func (p Port) validate() error {
	switch p.Protocol {
	case corev1.ProtocolTCP, corev1.ProtocolUDP:
	case corev1.ProtocolSCTP:
		return fmt.Errorf("hostPort %d: protocol SCTP is unsupported (only TCP and UDP are published)", p.HostPort)
	default:
		return fmt.Errorf("hostPort %d: unknown protocol %q", p.HostPort, p.Protocol)
	}
	if p.HostPort < 1 || p.HostPort > 65535 {
		return fmt.Errorf("%s hostPort %d: out of range 1-65535", p.Protocol, p.HostPort)
	}
	if p.ContainerPort < 1 || p.ContainerPort > 65535 {
		return fmt.Errorf("%s hostPort %d: containerPort %d out of range 1-65535", p.Protocol, p.HostPort, p.ContainerPort)
	}
	if p.HostIP.Is4In6() {
		return fmt.Errorf("%s hostPort %d: hostIP %s: use the plain IPv4 form", p.Protocol, p.HostPort, p.HostIP)
	}
	if p.HostIP.Zone() != "" {
		return fmt.Errorf("%s hostPort %d: hostIP %s: zones are unsupported", p.Protocol, p.HostPort, p.HostIP)
	}
	return nil
}

// conflicts reports whether two ports claim the same host socket, as the
// scheduler's HostPortInfo.CheckConflict decides
// (k8s.io/kubernetes pkg/scheduler/framework/types.go), which kubelet's
// admission (pkg/kubelet/lifecycle/predicate.go, NodePorts) uses: same
// protocol and port, and the same hostIP or either one binding all.
func (p Port) conflicts(q Port) bool {
	if p.Protocol != q.Protocol || p.HostPort != q.HostPort {
		return false
	}
	return p.anyHost() || q.anyHost() || p.HostIP == q.HostIP
}

// NodePortsReason is kubelet's predicate description when a pod's hostPorts
// are taken (pkg/scheduler/framework/plugins/nodeports: ErrReason).
const NodePortsReason = "node(s) didn't have free ports for the requested pod ports"

// ConflictError is a hostPort already published by another pod.
type ConflictError struct {
	Pod, OtherPod string // UIDs
	Port, Other   Port
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("pod %s: hostPort %s conflicts with %s of pod %s: %s", e.Pod, e.Port, e.Other, e.OtherPod, NodePortsReason)
}

// Rule comments (nft's userdata comment, shown by `nft list ruleset`) carry
// the owner, so Remove and GC delete exactly one pod's rules, as portmap's
// nftables backend does with the container ID.
//
//	pod=<uid> port=<proto>/<hostIP or *>/<hostPort>/<containerPort>
//	pod=<uid> masq=hairpin|localhost
const (
	podKey  = "pod="
	portKey = "port="
	masqKey = "masq="
)

func portComment(uid string, p Port) string {
	host := "*"
	if !p.anyHost() {
		host = p.HostIP.String()
	}
	return fmt.Sprintf("%s%s %s%s/%s/%d/%d", podKey, uid, portKey, p.Protocol, host, p.HostPort, p.ContainerPort)
}

func masqComment(uid, kind string) string {
	return podKey + uid + " " + masqKey + kind
}

// parseComment returns the owner of a rule, and its Port when it is a
// port's DNAT rule.
func parseComment(c string) (uid string, port Port, isPort bool, err error) {
	f := strings.Fields(c)
	if len(f) != 2 || !strings.HasPrefix(f[0], podKey) {
		return "", Port{}, false, fmt.Errorf("rule comment %q: not podboot's", c)
	}
	uid = strings.TrimPrefix(f[0], podKey)
	if strings.HasPrefix(f[1], masqKey) {
		return uid, Port{}, false, nil
	}
	spec, ok := strings.CutPrefix(f[1], portKey)
	if !ok {
		return "", Port{}, false, fmt.Errorf("rule comment %q: neither port nor masq", c)
	}
	parts := strings.Split(spec, "/")
	if len(parts) != 4 {
		return "", Port{}, false, fmt.Errorf("rule comment %q: port needs proto/hostIP/hostPort/containerPort", c)
	}
	port.Protocol = corev1.Protocol(parts[0])
	if parts[1] != "*" {
		if port.HostIP, err = netip.ParseAddr(parts[1]); err != nil {
			return "", Port{}, false, fmt.Errorf("rule comment %q: %w", c, err)
		}
	}
	hp, err1 := strconv.ParseInt(parts[2], 10, 32)
	cp, err2 := strconv.ParseInt(parts[3], 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return "", Port{}, false, fmt.Errorf("rule comment %q: %w", c, err)
	}
	port.HostPort, port.ContainerPort = int32(hp), int32(cp)
	if err := port.validate(); err != nil {
		return "", Port{}, false, fmt.Errorf("rule comment %q: %w", c, err)
	}
	return uid, port, true, nil
}

// validUID keeps comments parseable and short (nft comments hold 128 bytes).
func validUID(uid string) error {
	if uid == "" {
		return errors.New("empty pod UID")
	}
	if len(uid) > 64 {
		return fmt.Errorf("pod UID %q: longer than 64 bytes", uid)
	}
	for _, r := range uid {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("pod UID %q: only printable ASCII without spaces", uid)
		}
	}
	return nil
}

// checkAdd validates a pod's ports against each other and against the
// ports other pods publish (existing, by UID; the pod's own are replaced).
func checkAdd(uid string, podIP netip.Addr, ports []Port, existing map[string][]Port) error {
	if err := validUID(uid); err != nil {
		return err
	}
	if !podIP.IsValid() || podIP.IsUnspecified() || podIP.Zone() != "" {
		return fmt.Errorf("pod %s: invalid pod IP %v", uid, podIP)
	}
	for i, p := range ports {
		if err := p.validate(); err != nil {
			return fmt.Errorf("pod %s: %w", uid, err)
		}
		if !p.anyHost() && p.HostIP.Is4() != podIP.Unmap().Is4() {
			return fmt.Errorf("pod %s: %s: hostIP and pod IP %s are of different families", uid, p, podIP)
		}
		for _, q := range ports[:i] {
			if p.conflicts(q) {
				return fmt.Errorf("pod %s: hostPort %s listed twice (conflicts with %s)", uid, p, q)
			}
		}
	}
	for other, theirs := range existing {
		if other == uid {
			continue
		}
		for _, p := range ports {
			for _, q := range theirs {
				if p.conflicts(q) {
					return &ConflictError{Pod: uid, OtherPod: other, Port: p, Other: q}
				}
			}
		}
	}
	return nil
}
