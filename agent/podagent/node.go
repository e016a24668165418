package podagent

import (
	"context"
	"fmt"
	"maps"
	"net"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/admission"
	"github.com/podboot/podboot/internal/device"
)

// versioner is the part of the runtime that reports its version.
type versioner interface {
	Version(ctx context.Context) (string, error)
}

// buildNode describes this machine as a Node object, reading it through
// procfs the way kubelet's cadvisor does. Allocatable is kubelet's:
// capacity minus system-reserved minus the hard eviction threshold
// (device.yaml's resources section).
func buildNode(ctx context.Context, name string, rt versioner, res device.Resources, dev device.Node) (*corev1.Node, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("open procfs: %w", err)
	}
	capacity, err := admission.Capacity(fs)
	if err != nil {
		return nil, err
	}
	allocatable := admission.Allocatable(capacity, res.SystemReservedList(), admission.HardEvictionReservation(res.EvictionThresholds(), capacity))
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	runtimeVersion := "containerd://unknown"
	if v, err := rt.Version(ctx); err == nil {
		runtimeVersion = "containerd://" + strings.TrimPrefix(v, "v")
	}
	now := metav1.NewTime(time.Now())
	labels := map[string]string{
		device.LabelHostname:               name,
		device.LabelOS:                     "linux",
		device.LabelArch:                   goruntime.GOARCH,
		"beta.kubernetes.io/os":            "linux",
		"beta.kubernetes.io/arch":          goruntime.GOARCH,
		"node.kubernetes.io/instance-type": "podboot",
	}
	// device.yaml's node.labels are kubelet's --node-labels: pods select
	// the board by them. As in kubelet they overwrite a default label;
	// device.yaml refuses the three well-known ones the board must own.
	maps.Copy(labels, dev.Labels)
	node := &corev1.Node{
		TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              name,
			UID:               nodeUID(name),
			CreationTimestamp: now,
			Labels:            labels,
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable,
			Phase:       corev1.NodeRunning,
			// The initial conditions; the eviction loop (eviction.go)
			// updates MemoryPressure and DiskPressure from its first round.
			Conditions: []corev1.NodeCondition{
				nodeCondition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now),
				nodeCondition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
				nodeCondition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", now),
				nodeCondition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", now),
			},
			Addresses: nodeAddresses(name),
			NodeInfo: corev1.NodeSystemInfo{
				KernelVersion:           unix.ByteSliceToString(uts.Release[:]),
				OSImage:                 "podboot",
				ContainerRuntimeVersion: runtimeVersion,
				KubeletVersion:          KubernetesVersion,
				KubeProxyVersion:        "",
				OperatingSystem:         "linux",
				Architecture:            goruntime.GOARCH,
				MachineID:               readTrim("/etc/machine-id"),
				BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
			},
		},
	}
	return node, nil
}

func nodeCondition(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string, now metav1.Time) corev1.NodeCondition {
	return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
}

// nodeAddresses lists the hostname and the first global unicast IPv4
// address, which kubelet would report as InternalIP.
func nodeAddresses(name string) []corev1.NodeAddress {
	var out []corev1.NodeAddress
	if ip := firstGlobalIPv4(); ip != "" {
		out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return append(out, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
}

func nodeInternalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func firstGlobalIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}
