package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/podboot/podboot/agent/runtime"
)

// managedHosts is kubelet's managed /etc/hosts (pkg/kubelet/kubelet_pods.go
// managedHostsHeader and the loopback entries): without it `localhost` does
// not resolve in images that lack an /etc/hosts, and the containers of a pod
// talk to each other on localhost.
const managedHosts = `# Kubernetes-managed hosts file.
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

func (r *Runtime) podFilesDir(uid string) string {
	return filepath.Join(r.cfg.StateDir, "podfiles", uid)
}

// ensurePodFiles writes the pod's /etc/hosts and /etc/hostname (shared by its
// containers, as kubelet's are) and returns the mounts for them. Pods on the
// host's network see the host's files, as with kubelet.
func (r *Runtime) ensurePodFiles(sb runtime.Sandbox) (oci.SpecOpts, error) {
	if sb.NetNS == "" {
		return func(context.Context, oci.Client, *containers.Container, *specs.Spec) error { return nil }, nil
	}
	dir := r.podFilesDir(string(sb.Pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create pod files directory %q: %w", dir, err)
	}
	hosts := managedHosts
	if sb.IP != "" {
		hosts += sb.IP + "\t" + sb.Hostname + "\n"
	}
	files := map[string]string{"hosts": hosts, "hostname": sb.Hostname + "\n"}
	for name, content := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), []byte(content)); err != nil {
			return nil, err
		}
	}
	return oci.WithMounts([]specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: filepath.Join(dir, "hosts"), Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(dir, "hostname"), Options: []string{"rbind", "rprivate", "rw"}},
	}), nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return nil
}
