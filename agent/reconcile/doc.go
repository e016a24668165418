// Package reconcile is the pod agent's core: kubelet's pod workers and
// computePodActions for static pods.
//
// ComputeActions is the pure decision: given a pod, its sandbox, the
// observed container instances and the crash-loop backoff, what to create,
// start, stop and remove. Manager runs one worker goroutine per pod that
// relists the runtime, executes those actions (pulling images with
// kubelet's pull policy and backoff), computes the status with podstatus,
// publishes the pod, records kubelet's events, and persists what the
// runtime cannot tell a restarted agent (creation and start times,
// condition times, backoffs) in a small JSON state file.
package reconcile
