package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/atomicfile"
	"github.com/podboot/podboot/netsetup/poddns"
)

func (r *Runtime) podFilesDir(uid string) string {
	return filepath.Join(r.cfg.StateDir, "podfiles", uid)
}

// writePodFiles writes the pod's /etc/hosts, /etc/hostname and
// /etc/resolv.conf, shared by its containers as kubelet's and containerd's
// CRI's are, once per sandbox. A pod on the host's network gets the node's
// hosts file with its hostAliases and the node's hostname.
func (r *Runtime) writePodFiles(sb runtime.Sandbox, cfg runtime.SandboxConfig) error {
	hosts, err := r.podHosts(sb, cfg.Domain, cfg.HostAliases)
	if err != nil {
		return err
	}
	dir := r.podFilesDir(string(sb.Pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create pod files directory %q: %w", dir, err)
	}
	files := map[string][]byte{"hosts": hosts, "hostname": []byte(sb.Hostname + "\n")}
	if cfg.ResolvConf != nil {
		files["resolv.conf"] = cfg.ResolvConf
	}
	for name, content := range files {
		if err := atomicfile.Write(filepath.Join(dir, name), content, 0o644); err != nil {
			return err // names the file
		}
	}
	return nil
}

// hostNetworkHostsHeader is kubelet's managedHostsHeaderWithHostNetwork
// (pkg/kubelet/kubelet_pods.go).
const hostNetworkHostsHeader = "# Kubernetes-managed hosts file (host network).\n"

// podHosts is kubelet's hosts file for the pod (ensureHostsFile): for a
// pod on the host's network (no network namespace of its own), the node's
// hosts file under kubelet's header, then the hostAliases
// (nodeHostsFileContent); otherwise the managed file for the sandbox's IP.
// kubelet fails the container when the node's file cannot be read.
func (r *Runtime) podHosts(sb runtime.Sandbox, domain string, aliases []corev1.HostAlias) ([]byte, error) {
	if sb.NetNS == "" {
		node, err := os.ReadFile(r.cfg.HostsFile)
		if err != nil {
			return nil, fmt.Errorf("read the node's hosts file: %w", err)
		}
		pod := &corev1.Pod{Spec: corev1.PodSpec{HostAliases: aliases}}
		return append([]byte(hostNetworkHostsHeader), poddns.NodeHosts(node, pod)...), nil
	}
	var ips []string
	if sb.IP != "" {
		ips = append(ips, sb.IP)
	}
	return poddns.PodHosts(sb.Hostname, domain, ips, aliases), nil
}

// podFileMounts bind-mounts the pod's files into a container, but not
// over a volume the container mounts at the same path itself (containerd
// CRI's isInCRIMounts; kubelet's shouldMountHostsFile for /etc/hosts). A
// sandbox made before its files were written at creation gets its hosts
// and hostname now.
func (r *Runtime) podFileMounts(sb runtime.Sandbox, own []runtime.Mount) (oci.SpecOpts, error) {
	dir := r.podFilesDir(string(sb.Pod.UID))
	if _, err := os.Stat(filepath.Join(dir, "hosts")); errors.Is(err, os.ErrNotExist) {
		if err := r.writePodFiles(sb, runtime.SandboxConfig{}); err != nil {
			return nil, err
		}
	}
	var mounts []specs.Mount
	for _, name := range []string{"hosts", "hostname", "resolv.conf"} {
		src := filepath.Join(dir, name)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if slices.ContainsFunc(own, func(m runtime.Mount) bool { return filepath.Clean(m.ContainerPath) == "/etc/"+name }) {
			continue
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "rw"}})
	}
	return oci.WithMounts(mounts), nil
}
