package podagent

import (
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Device is /flash/device.yaml: the board's own settings. Only the parts
// the agent uses are here; unknown fields are an error, so a typo is
// reported rather than silently ignored.
type Device struct {
	Hostname string `json:"hostname,omitempty"`
	// Registries follows k3s's registries.yaml: per registry host, the
	// mirror endpoints to pull from (air-gapped boards, local caches).
	Registries Registries `json:"registries,omitempty"`
}

// Registries is k3s's registries.yaml `mirrors` section.
type Registries struct {
	Mirrors map[string]Mirror `json:"mirrors,omitempty"`
}

// Mirror lists endpoints tried in order, e.g. http://127.0.0.1:5000.
type Mirror struct {
	Endpoint []string `json:"endpoint"`
}

// loadDevice reads path; a missing file is the defaults.
func loadDevice(path string) (Device, error) {
	var d Device
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("read device config %q: %w", path, err)
	}
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		return Device{}, fmt.Errorf("device config %q: %w", path, err)
	}
	for host, m := range d.Registries.Mirrors {
		if len(m.Endpoint) == 0 {
			return Device{}, fmt.Errorf("device config %q: registries.mirrors[%q].endpoint: Required value", path, host)
		}
	}
	return d, nil
}

// mirrors flattens the mirror config for the runtime.
func (d Device) mirrors() map[string][]string {
	if len(d.Registries.Mirrors) == 0 {
		return nil
	}
	out := make(map[string][]string, len(d.Registries.Mirrors))
	for host, m := range d.Registries.Mirrors {
		out[host] = append([]string(nil), m.Endpoint...)
	}
	return out
}
