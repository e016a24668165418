// Command devnode runs a whole podboot node on a developer's Linux host: a
// private containerd and the pod agent, supervised the way PID 1 supervises
// them on a board.
//
//	devnode --flash DIR --state DIR --listen 127.0.0.1:PORT [--bin DIR] [--cni-bin-dir DIR]
//
// It prints "ready" on stdout once the agent's /healthz answers; its logs
// and its services' go to stderr. SIGTERM or SIGINT is a power-off: the
// agent stops every pod gracefully, containerd stops, and devnode removes
// what is left (shims, mounts under the state directory, empty container
// cgroups) before it exits 0.
//
// Without --cni-bin-dir, pods get loopback only. With it, the agent's pod
// network (bridge cni0, host-local addresses, nftables NAT) is set up in
// devnode's network namespace: run devnode in a namespace of its own, e.g.
// `ip netns add n1 && nsenter --net=/run/netns/n1 devnode ...`, to leave
// the host's network alone. The tests do that.
//
// The agent's API has no authentication here, so --listen must be a
// loopback address.
package main
