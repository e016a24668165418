// Package admission decides which of the flash's pods the board runs, the
// way kubelet admits pods: the node's capacity from procfs, allocatable
// after what the system keeps, and kubelet's predicate checks with their
// reasons and messages — the pod's OS (PodOSSelectorNodeLabelDoesNotMatch,
// PodOSNotSupported), resource fit (OutOfcpu, OutOfmemory, OutOfpods),
// nodeSelector and node affinity (NodeAffinity), spec.nodeName (NodeName)
// and hostPorts (NodePorts). It is pure apart from Capacity, which reads
// /proc.
package admission
