// Package netbench measures podboot's pod network from outside the agent:
// how long podnet's Setup and Teardown take per pod, and TCP throughput
// pod to pod on the bridge and from another host through a hostPort,
// against a plain veth pair between two namespaces.
//
// The benchmarks are in the package's tests (root, bin/cni from make
// build); bench/network.sh runs them and bench/README.md has the figures.
// Everything runs in network namespaces the benchmarks create and remove:
// the machine's own network is never touched.
package netbench
