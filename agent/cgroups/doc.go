// Package cgroups keeps kubelet's cgroupfs-driver hierarchy for the board's
// pods (pkg/kubelet/cm): the node-allocatable cgroup (kubelet's
// "kubepods"), the burstable and besteffort QoS cgroups under it, and one
// cgroup per pod, Guaranteed pods directly under the root. runc creates
// the containers' cgroups inside a pod's cgroup from the OCI spec's
// cgroupsPath; this package never creates them but removes what is left.
//
// The values come from agent/resources; this package only maps them onto
// cgroup v1 (every mounted hierarchy, as the cgroupfs driver does) or the
// cgroup v2 unified hierarchy, through github.com/containerd/cgroups/v3.
// See docs/cgroups.md.
package cgroups
