package poddns

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ClusterDomain is the domain of a pod's FQDN when it sets a subdomain
// (kubelet's --cluster-domain; cluster.local as in kubeadm and k3s).
const ClusterDomain = "cluster.local"

// managedHeader and the loopback entries are kubelet's managedHostsHeader
// and the lines of managedHostsFileContent.
const managedHeader = "# Kubernetes-managed hosts file.\n"

const loopbackEntries = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

// Hostname is the pod's hostname and, with a subdomain, its domain
// (kubelet's GeneratePodHostNameAndDomain): spec.hostname or the pod name,
// at most 63 characters, and <subdomain>.<namespace>.svc.cluster.local.
func Hostname(pod *corev1.Pod) (hostname, domain string) {
	hostname = pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	if len(hostname) > 63 {
		// kubelet's truncatePodHostnameIfNeeded.
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	if pod.Spec.Subdomain != "" {
		domain = pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + ClusterDomain
	}
	return hostname, domain
}

// PodHosts is the /etc/hosts of a pod with its own network (kubelet's
// managedHostsFileContent): loopback names, each pod IP with the pod's
// FQDN (hostname.domain, when it has a domain) and hostname, then the
// hostAliases.
func PodHosts(hostname, domain string, podIPs []string, aliases []corev1.HostAlias) []byte {
	var b strings.Builder
	b.WriteString(managedHeader)
	b.WriteString(loopbackEntries)
	for _, ip := range podIPs {
		if domain != "" {
			b.WriteString(ip + "\t" + hostname + "." + domain + "\t" + hostname + "\n")
		} else {
			b.WriteString(ip + "\t" + hostname + "\n")
		}
	}
	writeAliases(&b, aliases)
	return []byte(b.String())
}

// NodeHosts is the /etc/hosts of a hostNetwork pod (kubelet's
// nodeHostsFileContent): the node's own file, then the hostAliases.
func NodeHosts(node []byte, pod *corev1.Pod) []byte {
	var b strings.Builder
	b.Write(node)
	if len(node) > 0 && node[len(node)-1] != '\n' {
		b.WriteByte('\n')
	}
	writeAliases(&b, pod.Spec.HostAliases)
	return []byte(b.String())
}

func writeAliases(b *strings.Builder, aliases []corev1.HostAlias) {
	if len(aliases) == 0 {
		return
	}
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		b.WriteString(a.IP + "\t" + strings.Join(a.Hostnames, "\t") + "\n")
	}
}
