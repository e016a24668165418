package containerd

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// mirrorWildcard configures the mirrors of every registry that has none of
// its own (k3s's registries.yaml "*").
const mirrorWildcard = "*"

// validateMirrors checks Config.Mirrors: a registry host (or "*") to a
// non-empty list of http:// or https:// endpoint URLs.
func validateMirrors(mirrors map[string][]string) error {
	hosts := make([]string, 0, len(mirrors))
	for h := range mirrors {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("registry mirrors: %q is not a registry host", h)
		}
		if len(mirrors[h]) == 0 {
			return fmt.Errorf("registry mirrors of %q: no endpoint", h)
		}
		for _, ep := range mirrors[h] {
			if _, err := parseEndpoint(ep); err != nil {
				return fmt.Errorf("registry mirrors of %q: %w", h, err)
			}
		}
	}
	return nil
}

// parseEndpoint reads a mirror endpoint as k3s does: scheme and host, and
// an optional path under which the registry API (/v2) lives.
func parseEndpoint(ep string) (*url.URL, error) {
	u, err := url.Parse(ep)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("endpoint %q: scheme must be http or https", ep)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: no host", ep)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("endpoint %q: only scheme, host and path are allowed", ep)
	}
	return u, nil
}

// registryHosts is the resolver's host list for a registry: its mirrors
// in the configured order (else those of "*"), then the registry itself,
// as k3s and containerd's hosts.toml try them. Registries on the loopback
// address speak plain HTTP, as docker and containerd's CRI assume.
func registryHosts(mirrors map[string][]string, client *http.Client) docker.RegistryHosts {
	authorizer := docker.NewDockerAuthorizer(docker.WithAuthClient(client))
	upstream := docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(docker.MatchLocalhost),
		docker.WithClient(client),
		docker.WithAuthorizer(authorizer),
	)
	return func(host string) ([]docker.RegistryHost, error) {
		endpoints, ok := mirrors[host]
		if !ok {
			endpoints = mirrors[mirrorWildcard]
		}
		var out []docker.RegistryHost
		for _, ep := range endpoints {
			u, err := parseEndpoint(ep)
			if err != nil {
				return nil, fmt.Errorf("registry mirror of %q: %w", host, err)
			}
			out = append(out, docker.RegistryHost{
				Client:       client,
				Authorizer:   authorizer,
				Host:         u.Host,
				Scheme:       u.Scheme,
				Path:         apiPath(u.Path),
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			})
		}
		up, err := upstream(host)
		if err != nil {
			return nil, fmt.Errorf("registry %q: %w", host, err)
		}
		return append(out, up...), nil
	}
}

// apiPath is where an endpoint serves the registry API: "/v2" under its
// path, as containerd's hosts.toml appends it.
func apiPath(p string) string {
	p = strings.TrimSuffix(p, "/")
	if strings.HasSuffix(p, "/v2") {
		return p
	}
	return p + "/v2"
}
