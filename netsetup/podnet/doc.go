// Package podnet gives each pod its own address on the board's pod bridge
// through the standard CNI plugins (bridge with host-local IPAM), driven
// with libcni as containerd's CRI does.
//
// Conflist turns device.yaml's network.pods into the CNI network
// configuration list; New loads it; Setup attaches a pod's pinned network
// namespace (lo up, then eth0 on a veth to the bridge), Teardown detaches
// it idempotently, Check verifies it and GC collects pods the agent no
// longer runs. The plugins run in the caller's network namespace, which
// is the node's: call Setup and Teardown from the host namespace.
//
// Pods are keyed by their UID (CNI's container ID). libcni's cache and
// host-local's allocations belong under the agent's runtime state on tmpfs:
// they outlive an agent restart and, like the namespaces they describe,
// not a reboot.
package podnet
