package poddns

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Limits of pkg/apis/core/validation (MaxDNSNameservers, MaxDNSSearchPaths,
// MaxDNSSearchListChars), which kubelet applies to the node's file too.
const (
	maxNameservers     = 3
	maxSearchPaths     = 32
	maxSearchListChars = 2048
)

// Config is a resolv.conf's content.
type Config struct {
	Nameservers []string
	Searches    []string
	Options     []string // "ndots:5", "edns0"
}

// Warning is something kubelet reports as a Warning event on the pod:
// Reason is the event's reason, Message its text.
type Warning struct {
	Reason, Message string
}

// ParseResolvConf reads the node's resolv.conf as kubelet's parseResolvConf
// does: nameserver, search and options lines; later search lines replace
// earlier ones; comments and other keywords are ignored.
func ParseResolvConf(b []byte) Config {
	var c Config
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				c.Nameservers = append(c.Nameservers, f[1])
			}
		case "search":
			c.Searches = nil
			for _, s := range f[1:] {
				if s != "." { // the root domain means "none"
					c.Searches = append(c.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c
}

// Node is the node's side of its pods' DNS.
type Node struct {
	// ResolvConf is the node's resolver file (kubelet's --resolv-conf).
	ResolvConf Config
	// InCluster is set when the node is part of a cluster, whose pods
	// expect a cluster DNS under dnsPolicy ClusterFirst. A standalone
	// board has no cluster DNS by design: there ClusterFirst simply means
	// the node's resolver.
	InCluster bool
}

// PodResolvConf is the pod's resolver configuration (kubelet's GetPodDNS)
// given the node's: dnsPolicy Default, and ClusterFirst without cluster
// DNS, take the node's resolver; None starts empty; dnsConfig is then
// merged in (nameservers and search domains appended without repeats,
// options by name). The warnings are kubelet's events for what it had to
// change; a standalone node (not InCluster) does not warn that it has no
// cluster DNS, as it never has one.
func PodResolvConf(pod *corev1.Pod, node Node) (Config, []Warning) {
	var warnings []Warning
	var c Config
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, "":
		// ClusterFirst on the host's network is Default in kubelet anyway;
		// otherwise kubelet without cluster DNS warns and falls back. A
		// standalone board falls back without a word: it has no cluster
		// DNS by design, and a warning on every pod would only bury the
		// events that need a person's attention.
		if node.InCluster && (dnsPolicy(pod) != corev1.DNSClusterFirst || !pod.Spec.HostNetwork) {
			warnings = append(warnings, Warning{"MissingClusterDNS", fmt.Sprintf(
				"pod: %q. kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.",
				podName(pod), corev1.DNSClusterFirst, corev1.DNSDefault)})
		}
		c = clone(node.ResolvConf)
	default: // Default
		c = clone(node.ResolvConf)
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		c.Nameservers = compact(append(c.Nameservers, dc.Nameservers...))
		c.Searches = compact(append(c.Searches, dc.Searches...))
		c.Options = mergeOptions(c.Options, dc.Options)
	}
	if len(c.Nameservers) > maxNameservers {
		c.Nameservers = c.Nameservers[:maxNameservers]
		warnings = append(warnings, Warning{"DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(c.Nameservers, " ")})
	}
	if s, cut := limitSearches(c.Searches); cut {
		c.Searches = s
		warnings = append(warnings, Warning{"DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(s, " ")})
	}
	return c, warnings
}

// Bytes renders the file as containerd's CRI writes it: search, then
// nameservers, then options.
func (c Config) Bytes() []byte {
	var b strings.Builder
	if len(c.Searches) > 0 {
		b.WriteString("search " + strings.Join(c.Searches, " ") + "\n")
	}
	for _, ns := range c.Nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(c.Options) > 0 {
		b.WriteString("options " + strings.Join(c.Options, " ") + "\n")
	}
	return []byte(b.String())
}

func podName(pod *corev1.Pod) string {
	return pod.Name + "_" + pod.Namespace + "(" + string(pod.UID) + ")"
}

func dnsPolicy(pod *corev1.Pod) corev1.DNSPolicy {
	if pod.Spec.DNSPolicy == "" {
		return corev1.DNSClusterFirst
	}
	return pod.Spec.DNSPolicy
}

func clone(c Config) Config {
	return Config{Nameservers: slices.Clone(c.Nameservers), Searches: slices.Clone(c.Searches), Options: slices.Clone(c.Options)}
}

// compact drops repeats, keeping the first (kubelet's omitDuplicates).
func compact(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// mergeOptions is kubelet's mergeDNSOptions: the pod's options replace the
// node's of the same name; an option without a value is written bare.
func mergeOptions(existing []string, pod []corev1.PodDNSConfigOption) []string {
	var names []string
	values := map[string]string{}
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	for _, o := range existing {
		name, value, _ := strings.Cut(o, ":")
		set(name, value)
	}
	for _, o := range pod {
		v := ""
		if o.Value != nil {
			v = *o.Value
		}
		set(o.Name, v)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if values[n] == "" {
			out = append(out, n)
		} else {
			out = append(out, n+":"+values[n])
		}
	}
	return out
}

// limitSearches is kubelet's search-path limit: at most 32 domains and
// 2048 characters in all (spaces included).
func limitSearches(s []string) ([]string, bool) {
	cut := false
	if len(s) > maxSearchPaths {
		s, cut = s[:maxSearchPaths], true
	}
	for len(strings.Join(s, " ")) > maxSearchListChars {
		s, cut = s[:len(s)-1], true
	}
	return s, cut
}
