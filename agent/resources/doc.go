// Package resources computes what kubelet computes from a pod's resource
// requirements: the pod's effective requests and limits, its QoS class, each
// container's OOM score adjustment, and the cgroup values (cpu.weight,
// cpu.max, memory.max) of a container and of the pod cgroup.
//
// It is pure: no files, no cgroups, no clock. The agent applies the values
// through containerd's OCI spec and the pod cgroup, and reports the QoS class
// as status.qosClass; that wiring lives elsewhere. Every formula is kubelet's
// and each function names the kubelet source it follows, so that a pod gets
// the same numbers on a board as on a node.
package resources
