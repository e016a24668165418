package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/netsetup/poddns"
)

func (r *Runtime) podFilesDir(uid string) string {
	return filepath.Join(r.cfg.StateDir, "podfiles", uid)
}

// writePodFiles writes the pod's /etc/hosts, /etc/hostname and
// /etc/resolv.conf, shared by its containers as kubelet's are, once per
// sandbox. Pods on the host's network see the host's files.
func (r *Runtime) writePodFiles(sb runtime.Sandbox, cfg runtime.SandboxConfig) error {
	if sb.NetNS == "" {
		return nil
	}
	dir := r.podFilesDir(string(sb.Pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create pod files directory %q: %w", dir, err)
	}
	files := map[string][]byte{"hosts": podHosts(sb, cfg.Domain, cfg.HostAliases), "hostname": []byte(sb.Hostname + "\n")}
	if cfg.ResolvConf != nil {
		files["resolv.conf"] = cfg.ResolvConf
	}
	for name, content := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), content); err != nil {
			return err
		}
	}
	return nil
}

// podHosts is kubelet's managed hosts file for the sandbox's IP.
func podHosts(sb runtime.Sandbox, domain string, aliases []corev1.HostAlias) []byte {
	var ips []string
	if sb.IP != "" {
		ips = append(ips, sb.IP)
	}
	return poddns.PodHosts(sb.Hostname, domain, ips, aliases)
}

// podFileMounts bind-mounts the pod's files into a container. A sandbox
// made before its files were written at creation gets its hosts and
// hostname now.
func (r *Runtime) podFileMounts(sb runtime.Sandbox) (oci.SpecOpts, error) {
	if sb.NetNS == "" {
		return func(context.Context, oci.Client, *containers.Container, *specs.Spec) error { return nil }, nil
	}
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
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "rw"}})
	}
	return oci.WithMounts(mounts), nil
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
