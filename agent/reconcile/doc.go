// Package reconcile is the pod agent's core: kubelet's pod workers and
// computePodActions for static pods.
//
// ComputeActions is the pure decision: given a pod, its sandbox, the
// observed container instances and the crash-loop backoff, what to create,
// start, stop and remove, sidecars (restartable init containers) included.
// Manager runs one worker goroutine per pod that reads the pod's containers
// from a relist cache shared by all workers (so a sync costs the pod's own
// containers; the runtime is listed once per relist period, or when an
// event or a stop leaves a pod stale), publishes the pod at once and after
// every step, executes those actions (pulling images with
// kubelet's pull policy and backoff), computes the status with podstatus,
// publishes the pod, records kubelet's events, and persists what the
// runtime cannot tell a restarted agent (creation and start times,
// condition times, backoffs) in a small JSON state file, written only when
// its content changed, at most once per debounce interval.
//
// A pod dropped from the desired set is published terminating with the API
// server's deletionTimestamp and deletionGracePeriodSeconds (the grace
// SetDeletionGrace gave, as an API DELETE does, else the pod's), stopped
// with kubelet's grace, then removed; a pod whose metadata alone changed
// is republished without touching its containers (docs/runtime.md).
package reconcile
