// Package eviction is the pure part of kubelet's node-pressure eviction
// (pkg/kubelet/eviction/helpers.go), simplified for one board: which node
// conditions the hard thresholds put the node in, the order in which pods
// are evicted under memory pressure, and the message an evicted pod
// carries. Measuring the signals and killing pods are the agent's.
package eviction
