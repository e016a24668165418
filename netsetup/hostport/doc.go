// Package hostport programs pod NAT on the board through nftables netlink
// (github.com/google/nftables): what the CNI bridge plugin's ipMasq and the
// portmap plugin's nftables backend do, without the iptables or nft
// binaries, which the board does not have.
//
// # Ruleset
//
// Everything lives in one table of podboot's own, in nft syntax:
//
//	table inet podboot {
//		chain hostip_hostports { }   # per pod: ip daddr HOSTIP tcp dport P dnat to POD:C
//		chain hostports { }          # per pod: tcp dport P dnat to POD:C
//		chain masquerading { }       # per pod: ip saddr POD ip daddr POD masquerade (hairpin)
//		                             #          ip saddr 127.0.0.0/8 ip daddr POD masquerade
//		chain prerouting {
//			type nat hook prerouting priority dstnat
//			jump hostip_hostports
//			fib daddr type local jump hostports
//		}
//		chain output {
//			type nat hook output priority dstnat
//			jump hostip_hostports
//			fib daddr type local jump hostports
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat
//			jump masquerading
//			ip daddr 224.0.0.0/4 return
//			ip6 daddr ff00::/8 return
//			ip saddr SUBNET ip daddr != SUBNET masquerade   # per pod subnet
//		}
//	}
//
// EnsureBase creates the table and chains (adding an existing one is a
// no-op) and rewrites the three base chains as a whole, so it is safe at
// every agent start. The per-pod rules live only in the three regular
// chains; each carries an nft comment (rule userdata, shown by
// `nft list ruleset`) "pod=<uid> port=TCP/*/8080/80" or
// "pod=<uid> masq=hairpin|localhost". Remove and GC delete rules by that
// owner, and List rebuilds the published ports from it, so the ruleset is
// the only state: after an agent or board restart, GC with the pods that
// still exist removes the rest. Add replaces a pod's rules in the same
// netlink batch that checks nothing else changed, so a conflict or failure
// leaves the ruleset as it was. Netlink calls failing with EINTR, EAGAIN or
// an interrupted dump are retried.
//
// # Masquerade
//
// Traffic from a pod subnet to anything outside it is masqueraded in
// postrouting (priority srcnat); pod-to-pod traffic on the bridge keeps its
// source, multicast is left alone. The bridge plugin
// (containernetworking/plugins pkg/ip/ipmasq_nftables_linux.go) writes the
// same rule per container IP; podboot writes one per subnet, because it owns
// the whole subnet. EnsureBase also sets net.ipv4.ip_forward=1 (and IPv6
// forwarding for an IPv6 subnet), as the bridge plugin does.
//
// # hostPort
//
// A corev1.ContainerPort with a hostPort (see PodPorts, FromContainerPort)
// is DNATed to podIP:containerPort in prerouting for traffic arriving from
// outside and in output for connections from the board itself, both at
// priority dstnat, as portmap's forwardPorts does
// (plugins/meta/portmap/portmap_nftables.go). Without a hostIP, every local
// address works (`fib daddr type local`); with one, only that address.
//
// Connections from the board to 127.0.0.1:hostPort leave towards the
// bridge with a loopback source, which the kernel drops as martian unless
// net.ipv4.conf.<bridge>.route_localnet=1 (EnsureBase sets it on
// Options.Bridge, or on "all"); the localhost rule then masquerades them to
// the bridge's address so the pod can answer. portmap does the same (its
// "snat" option, on by default). IPv6 has no route_localnet: [::1] is not
// published, as with portmap.
//
// Hairpin: a pod reaching its own hostPort through a board address would
// receive a packet whose source is itself; the hairpin rule masquerades
// it to the bridge's address. With br_netfilter loaded such a packet is
// DNATed at the bridge and sent back out of the port it came in on, so the
// bridge plugin's hairpinMode must be on for the pod's veth (containerd's
// and kubelet's default).
//
// Conflicts follow kubelet's admission (the NodePorts predicate,
// HostPortInfo.CheckConflict in pkg/scheduler/framework/types.go): same
// protocol and hostPort, with the same hostIP or either binding all
// addresses; Add then returns a *ConflictError naming both pods and
// NodePortsReason. SCTP is refused (no SCTP NAT on the board).
//
// # Differences from portmap
//
//   - One table inet podboot instead of ip and ip6 tables cni_hostport, and
//     podboot's ipMasq lives in the same table instead of cni_plugins_masquerade.
//   - prerouting also requires `fib daddr type local` before hostports, so
//     traffic the board only forwards is never captured.
//   - The localhost masquerade matches 127.0.0.0/8, not only 127.0.0.1.
//   - Rules are owned by pod UID (portmap: container ID), and a hostPort
//     taken by another pod is an error instead of a silently shadowed rule.
//   - A hostIP of the other family than the pod IP is an error; portmap,
//     called once per pod IP, skips it.
package hostport
