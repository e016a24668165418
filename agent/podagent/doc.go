// Package podagent wires the pod agent together: the manifest watcher feeds
// desired pods to the reconcile manager, which drives the container runtime
// and publishes pods and events into the store that the API serves.
//
// Run owns every goroutine through an errgroup. Cancelling its context is a
// power-off: every pod is stopped gracefully before Run returns. A SIGKILLed
// agent stops nothing; the next Run adopts what it finds.
package podagent
