// Package podagent wires the pod agent together: the manifest watcher feeds
// desired pods to the reconcile manager, which drives the container runtime
// and publishes pods and events into the store that the API serves.
//
// Run composes three parts: the node's runtime (runtime.go: containerd,
// the pod network, the Node, cgroups, the flash's images), the pod manager
// (manager.go: reconcile, the manifest watcher, eviction) and the API
// (serve.go: handler, listeners, certificate keeper). Each adds its loops
// to Run's errgroup, so Run owns every goroutine. Cancelling its context is a
// power-off: every pod is stopped gracefully before Run returns. A SIGKILLed
// agent stops nothing; the next Run adopts what it finds.
package podagent
