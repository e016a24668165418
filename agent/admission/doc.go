// Package admission decides which of the flash's pods the board runs, the
// way kubelet admits pods: the node's capacity from procfs, allocatable
// after what the system keeps, and kubelet's resource-fit and hostPort
// checks with their reasons (OutOfcpu, OutOfmemory, OutOfpods, NodePorts)
// and messages. It is pure apart from Capacity, which reads /proc.
package admission
