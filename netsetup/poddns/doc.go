// Package poddns computes a pod's /etc/resolv.conf and /etc/hosts as
// kubelet does (pkg/kubelet/network/dns and kubelet_pods.go's managed
// hosts file), from the pod's dnsPolicy, dnsConfig, hostname, subdomain and
// hostAliases and the node's own files. It is pure: the runtime writes the
// files and bind-mounts them into every container of the pod.
//
// podboot runs no cluster DNS, so dnsPolicy ClusterFirst (the default)
// falls back to Default, the node's resolver, exactly as a kubelet without
// --cluster-dns does. A standalone board has no cluster DNS by design and
// falls back silently; a node that is part of a cluster (Node.InCluster)
// reports kubelet's MissingClusterDNS warning.
package poddns
