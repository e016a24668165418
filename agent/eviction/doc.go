// Package eviction is kubelet's node-pressure eviction
// (pkg/kubelet/eviction), simplified for one board: which node conditions
// the hard thresholds put the node in, the order in which pods are
// evicted, the message an evicted pod carries, and the Manager that
// observes the signals every monitoring period and evicts at most one pod
// per round. Killing the pod is the pod manager's (Evictor).
package eviction
