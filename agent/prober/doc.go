// Package prober runs a pod's liveness, readiness and startup probes as
// kubelet's pkg/kubelet/prober does (k8s.io/kubernetes v1.37.2): one
// worker goroutine per probe, which probes its container every
// periodSeconds and keeps the probe's result, by runtime container ID, in
// a cache the pod worker reads when it computes the status (ready,
// started) and decides what to kill (a failed liveness or startup probe).
//
// The Manager is told each pod's spec and latest published status
// (UpdatePod); a worker reads the container's ID, state and `started` from
// that status, never from the runtime, as kubelet's workers read the
// status manager. When a result the pod worker acts on changes, the
// Manager calls Config.Changed, so the pod syncs without waiting for a
// relist (kubelet's syncLoop on the results managers' Updates channels).
//
// The probes themselves (exec, httpGet, tcpSocket, grpc) are the Prober's,
// agent/probe's in the agent.
package prober
