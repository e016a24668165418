// Package soak runs a podboot node (bin/devnode) under a steady churn for a
// long time and samples, every interval, what would grow if anything
// leaked: the agent's RSS, goroutines, threads and open files,
// containerd's RSS and open files, the shims, the tmpfs the node's state
// lives in (and the container logs in it), and the mounts, cgroups and
// veths the node holds. A board runs for years unattended; a leak of one
// mount per pod replacement or of a log file per restart ends it.
//
// The churn is 20 pods of four kinds (Mix): steady pods (two with exec
// readiness probes), crash-looping pods, pods whose manifest is edited
// every EditEvery (each edit replaces the pod), and pods that log about
// 1 MB a minute. The node runs with the pod network on (every pod a veth
// on cni0) in a network namespace the soak makes, and its state directory
// on a tmpfs, as on a board.
//
// Analyze decides whether a series grows without bound: it drops the
// warm-up and compares the last third of the samples with the first
// (a generous level bound) and the series' robust (Theil-Sen) slope over
// the same span (a trend, not a spike or a step). It asserts no timing.
// bench/soak.sh runs it for 30 minutes and writes the report; the test
// in this package runs it for 5 minutes under PODBOOT_INTEGRATION=1.
package soak
