package admission

import corev1 "k8s.io/api/core/v1"

// Kubelet's refusal for a hostPort taken by an admitted pod: predicate.go's
// generalFilter wraps the scheduler's NodePorts failure in a
// PredicateFailureError, whose name is the reason and whose Error() is the
// message.
const (
	NodePorts        = "NodePorts"
	nodePortsMessage = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
)

// bindAll is the scheduler's DefaultBindAllHostIP: a hostPort on it (or on
// no hostIP) takes the port on every address.
const bindAll = "0.0.0.0"

// protocolPort is the scheduler's ProtocolPort.
type protocolPort struct {
	protocol string
	port     int32
}

// hostPorts is the scheduler's HostPortInfo: host IP → ports taken on it.
type hostPorts map[string]map[protocolPort]bool

// sanitize is HostPortInfo.sanitize: no hostIP means 0.0.0.0, no protocol
// means TCP. Other addresses are compared as written, as the scheduler does.
func sanitize(p corev1.ContainerPort) (ip string, pp protocolPort) {
	ip, protocol := p.HostIP, p.Protocol
	if ip == "" {
		ip = bindAll
	}
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	return ip, protocolPort{string(protocol), p.HostPort}
}

func (h hostPorts) add(p corev1.ContainerPort) {
	ip, pp := sanitize(p)
	if h[ip] == nil {
		h[ip] = map[protocolPort]bool{}
	}
	h[ip][pp] = true
}

// conflicts is HostPortInfo.CheckConflict: 0.0.0.0 collides with the port
// on any address, another address with itself and with 0.0.0.0.
func (h hostPorts) conflicts(p corev1.ContainerPort) bool {
	if p.HostPort <= 0 {
		return false
	}
	ip, pp := sanitize(p)
	if ip == bindAll {
		for _, taken := range h {
			if taken[pp] {
				return true
			}
		}
		return false
	}
	return h[bindAll][pp] || h[ip][pp]
}

// podHostPorts is the scheduler's GetHostPorts (pkg/scheduler/util), which
// the NodePorts filter reads: the hostPorts of the containers and of the
// restartable (sidecar) init containers, which run as long as the pod;
// other init containers are done before the pod's containers start and
// hold no port.
func podHostPorts(pod *corev1.Pod) []corev1.ContainerPort {
	var ports []corev1.ContainerPort
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			if p.HostPort > 0 {
				ports = append(ports, p)
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return ports
}

// portsFit is the NodePorts filter's Fits: none of pod's hostPorts is
// taken by an admitted pod. Ports within the pod itself are not compared,
// as the scheduler does not (validation refuses duplicates).
func portsFit(pod *corev1.Pod, admitted []*corev1.Pod) bool {
	want := podHostPorts(pod)
	if len(want) == 0 {
		return true
	}
	used := hostPorts{}
	for _, p := range admitted {
		for _, port := range podHostPorts(p) {
			used.add(port)
		}
	}
	for _, p := range want {
		if used.conflicts(p) {
			return false
		}
	}
	return true
}
