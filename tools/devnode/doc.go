// Command devnode runs a whole podboot node on a developer's Linux host: a
// private containerd and the pod agent, supervised the way PID 1 supervises
// them on a board.
//
//	devnode --flash DIR --state DIR --listen 127.0.0.1:PORT [--bin DIR]
//
// It prints "ready" on stdout once the agent's /healthz answers; its logs
// and its services' go to stderr. SIGTERM or SIGINT is a power-off: the
// agent stops every pod gracefully, containerd stops, and devnode removes
// what is left (shims, mounts under the state directory, empty container
// cgroups) before it exits 0.
//
// The agent's API has no authentication here, so --listen must be a
// loopback address.
package main
