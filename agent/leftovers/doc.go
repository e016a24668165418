// Package leftovers collects, when the agent starts, what pods left behind
// on the node with nothing alive to own it: pinned namespaces, volume
// mounts and pod files under the state directory, pod cgroups, and the
// container cgroups runc made inside them.
//
// They are left when the agent is killed (SIGKILL, the OOM killer, a
// power-cut of its supervisor) between the steps that create or remove a
// pod's state, or when a shim and containerd die before runc deletes a
// container. The owners are what the runtime still knows: a pod is owned
// while it has a sandbox record or a container, a container cgroup while
// its task is alive. Nothing owned is touched, so a pod whose shim still
// runs keeps running; what is not owned cannot be reached by the pod
// manager any more (it only knows pods through the runtime) and would stay
// for the board's lifetime.
//
// See docs/runtime.md, "Garbage at start".
package leftovers
