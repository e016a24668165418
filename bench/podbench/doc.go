// Package podbench measures podboot's pod agent from outside, the way a user
// sees it: how long a manifest written to the flash takes to become running
// containers (against podman kube play of the same manifests), how much
// memory the agent, containerd and the shims hold, and how much CPU an idle
// agent burns.
//
// It drives the real binaries (bin/devnode, bin/mkimage, podman) and reads
// /proc; it holds no timing assertions. The figures go to bench/README.md.
package podbench
