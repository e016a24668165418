// Package device reads /flash/device.yaml, the board's own settings. PID 1
// (hostname, host network, clock) and podagent (API listeners, registries)
// read the same file through this package, so one schema is checked
// strictly in one place.
package device

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"sigs.k8s.io/yaml"
)

// Defaults for the API listeners.
const (
	DefaultAPIListen = ":6443"
	DefaultVsockPort = 10250
)

// Device is /flash/device.yaml. Unknown fields are an error, so a typo is
// reported rather than silently ignored.
type Device struct {
	Hostname string  `json:"hostname,omitempty"`
	Network  Network `json:"network,omitempty"`
	Clock    Clock   `json:"clock,omitempty"`
	API      API     `json:"api,omitempty"`
	// Registries follows k3s's registries.yaml: per registry host, the
	// mirror endpoints to pull from (air-gapped boards, local caches).
	Registries Registries `json:"registries,omitempty"`
	// Resources is what the pods may use of the board (see resources.go).
	Resources Resources `json:"resources,omitempty"`
	// Node holds the node's labels (see node.go).
	Node Node `json:"node,omitempty"`
	// Logs bounds the containers' logs (see logs.go).
	Logs Logs `json:"logs,omitempty"`
	// Images: what to do when a registry cannot be reached (see images.go).
	Images Images `json:"images,omitempty"`
	// OTA: signed over-the-air manifest updates (see ota.go).
	OTA OTA `json:"ota,omitempty"`
}

// Network is the board's host network. The zero value is DHCP on the
// first ethernet interface.
type Network struct {
	// Interface is the link to configure; "" is the first ethernet.
	Interface string `json:"interface,omitempty"`
	// Addresses in CIDR form (192.168.1.20/24) make the configuration
	// static; none means DHCP.
	Addresses []string `json:"addresses,omitempty"`
	Gateway   string   `json:"gateway,omitempty"`
	// Nameservers replace the ones DHCP offers.
	Nameservers []string `json:"nameservers,omitempty"`
	// Pods is the pod network: bridge, subnet, MTU (see network_pods.go).
	Pods PodNetwork `json:"pods,omitempty"`
}

// Static reports whether the network is configured by hand.
func (n Network) Static() bool { return len(n.Addresses) > 0 }

// Clock configures time keeping. The board has no RTC on most boards: PID 1
// keeps the clock from going backwards across boots and asks NTP servers
// when they are reachable.
type Clock struct {
	// NTPServers default to pool.ntp.org's; an empty list in the file
	// ([]) turns NTP off.
	NTPServers []string `json:"ntpServers,omitempty"`
}

// API configures the agent's listeners. The TLS certificate, key and
// bearer token live beside device.yaml under api/ (see Credentials).
type API struct {
	// Listen is the HTTPS address, default ":6443"; "off" disables it.
	Listen string `json:"listen,omitempty"`
	// VsockPort is the AF_VSOCK port, default 10250; -1 disables it.
	VsockPort int `json:"vsockPort,omitempty"`
}

// Registries is k3s's registries.yaml `mirrors` section.
type Registries struct {
	Mirrors map[string]Mirror `json:"mirrors,omitempty"`
}

// Mirror lists endpoints tried in order, e.g. http://127.0.0.1:5000.
type Mirror struct {
	Endpoint []string `json:"endpoint"`
}

// Load reads path; a missing file is the defaults.
func Load(path string) (Device, error) {
	var d Device
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d.withDefaults(), nil
	}
	if err != nil {
		return d.withDefaults(), fmt.Errorf("read device config %q: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		return Device{}.withDefaults(), fmt.Errorf("device config %q: %w", path, err)
	}
	if err := d.validate(); err != nil {
		return Device{}.withDefaults(), fmt.Errorf("device config %q: %w", path, err)
	}
	return d.withDefaults(), nil
}

func (d Device) withDefaults() Device {
	if d.API.Listen == "" {
		d.API.Listen = DefaultAPIListen
	}
	if d.API.VsockPort == 0 {
		d.API.VsockPort = DefaultVsockPort
	}
	if d.Clock.NTPServers == nil {
		d.Clock.NTPServers = []string{"0.pool.ntp.org", "1.pool.ntp.org"}
	}
	d.Resources = d.Resources.withDefaults()
	d.Network.Pods = d.Network.Pods.withDefaults()
	d.Logs = d.Logs.withDefaults()
	return d
}

func (d Device) validate() error {
	for host, m := range d.Registries.Mirrors {
		if len(m.Endpoint) == 0 {
			return fmt.Errorf("registries.mirrors[%q].endpoint: Required value", host)
		}
	}
	for i, a := range d.Network.Addresses {
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("network.addresses[%d]: Invalid value: %q: want an address in CIDR form, e.g. 192.168.1.20/24", i, a)
		}
	}
	if g := d.Network.Gateway; g != "" {
		if _, err := netip.ParseAddr(g); err != nil {
			return fmt.Errorf("network.gateway: Invalid value: %q: not an IP address", g)
		}
	}
	for i, ns := range d.Network.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			return fmt.Errorf("network.nameservers[%d]: Invalid value: %q: not an IP address", i, ns)
		}
	}
	if err := d.Network.Pods.validate(); err != nil {
		return err
	}
	if p := d.API.VsockPort; p < -1 || p > 0xffffffff {
		return fmt.Errorf("api.vsockPort: Invalid value: %d: want a port number, or -1 for off", p)
	}
	if err := d.Node.validate(); err != nil {
		return err
	}
	if err := d.Logs.validate(); err != nil {
		return err
	}
	if err := d.OTA.validate(); err != nil {
		return err
	}
	return d.Resources.validate()
}

// Mirrors flattens the mirror config for the runtime.
func (d Device) Mirrors() map[string][]string {
	if len(d.Registries.Mirrors) == 0 {
		return nil
	}
	out := make(map[string][]string, len(d.Registries.Mirrors))
	for host, m := range d.Registries.Mirrors {
		out[host] = append([]string(nil), m.Endpoint...)
	}
	return out
}
