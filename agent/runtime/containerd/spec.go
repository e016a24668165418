package containerd

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/expansion"
)

// containerEnv is the container's environment as kubelet makes it: each
// value's $(VAR) references expanded with the variables defined before it.
// The image's variables are not visible to the expansion (kubelet does not
// know them either); they are merged under these by WithImageConfig.
func containerEnv(spec corev1.Container) (env []string, mapping func(string) string) {
	vars := map[string]string{}
	mapping = expansion.MappingFuncFor(vars)
	for _, e := range spec.Env {
		v := expansion.Expand(e.Value, mapping)
		vars[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	return env, mapping
}

// processArgs applies Kubernetes' command/args rules on top of the image's
// ENTRYPOINT/CMD: command replaces ENTRYPOINT and drops CMD, args replace
// CMD; both are $(VAR)-expanded. nil means "the image's own".
func processArgs(spec corev1.Container, entrypoint []string, mapping func(string) string) []string {
	if len(spec.Command) == 0 && len(spec.Args) == 0 {
		return nil
	}
	var argv []string
	if len(spec.Command) > 0 {
		for _, c := range spec.Command {
			argv = append(argv, expansion.Expand(c, mapping))
		}
	} else {
		argv = append(argv, entrypoint...)
	}
	for _, a := range spec.Args {
		argv = append(argv, expansion.Expand(a, mapping))
	}
	return argv
}

// effectiveUser is runAsUser/runAsGroup, the container's security context
// over the pod's.
func effectiveUser(cfg runtime.ContainerConfig) (uid, gid *int64) {
	if psc := cfg.PodSecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := cfg.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	return uid, gid
}

// specOpts builds the container's OCI spec.
func (r *Runtime) specOpts(id string, cfg runtime.ContainerConfig, img containerd.Image, entrypoint []string) []oci.SpecOpts {
	env, lookup := containerEnv(cfg.Spec)
	sb := cfg.Sandbox
	opts := []oci.SpecOpts{oci.WithImageConfig(img)}
	if argv := processArgs(cfg.Spec, entrypoint, lookup); argv != nil {
		opts = append(opts, oci.WithProcessArgs(argv...))
	}
	if sb.UTSNS != "" && sb.Hostname != "" {
		opts = append(opts, oci.WithHostname(sb.Hostname))
	}
	hostname := sb.Hostname
	if hostname != "" {
		// As containerd's CRI does; the container's own env may override it.
		opts = append(opts, oci.WithEnv([]string{"HOSTNAME=" + hostname}))
	}
	opts = append(opts, oci.WithEnv(env))
	if cfg.Spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(cfg.Spec.WorkingDir))
	}
	uid, gid := effectiveUser(cfg)
	switch {
	case uid != nil && gid != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*uid), uint32(*gid)))
	case uid != nil:
		// The group is the user's primary group in the image's /etc/passwd.
		opts = append(opts, oci.WithUserID(uint32(*uid)))
	case gid != nil:
		opts = append(opts, withGID(uint32(*gid)))
	}
	if uid != nil {
		opts = append(opts, oci.WithAdditionalGIDs(formatInt(*uid)))
	}
	if sc := cfg.Spec.SecurityContext; sc != nil {
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			opts = append(opts, oci.WithRootFSReadonly())
		}
		if sc.Privileged != nil && *sc.Privileged {
			opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
		}
		if sc.Capabilities != nil {
			if len(sc.Capabilities.Add) > 0 {
				opts = append(opts, oci.WithAddedCapabilities(capNames(sc.Capabilities.Add)))
			}
			if len(sc.Capabilities.Drop) > 0 {
				opts = append(opts, oci.WithDroppedCapabilities(capNames(sc.Capabilities.Drop)))
			}
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			opts = append(opts, oci.WithNoNewPrivileges)
		}
	}
	opts = append(opts,
		namespaceOpt(specs.NetworkNamespace, sb.NetNS),
		namespaceOpt(specs.IPCNamespace, sb.IPCNS),
		namespaceOpt(specs.UTSNamespace, sb.UTSNS),
		oci.WithAnnotations(map[string]string{shimGroupAnnotation: string(cfg.Pod.UID)}),
	)
	opts = append(opts, withVolumeMounts(cfg.Mounts))
	return append(opts, resourceOpts(id, cfg)...)
}

// withVolumeMounts bind-mounts the container's volumes as containerd's CRI
// WithMounts does (internal/cri/opts/spec_linux_opts.go): a default mount
// at the same destination (or under /dev, when /dev is mounted) gives way;
// mounts are ordered by the depth of their destination, so a parent comes
// before what is mounted inside it; options rbind, rprivate (propagation
// None) and ro or rw.
func withVolumeMounts(mounts []runtime.Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if len(mounts) == 0 {
			return nil
		}
		dests := map[string]bool{}
		for _, m := range mounts {
			dests[filepath.Clean(m.ContainerPath)] = true
		}
		kept := s.Mounts[:0]
		for _, m := range s.Mounts {
			dst := filepath.Clean(m.Destination)
			if dests[dst] || (dests["/dev"] && strings.HasPrefix(dst, "/dev/")) {
				continue
			}
			kept = append(kept, m)
		}
		s.Mounts = kept
		ordered := slices.Clone(mounts)
		slices.SortStableFunc(ordered, func(a, b runtime.Mount) int {
			return pathDepth(a.ContainerPath) - pathDepth(b.ContainerPath)
		})
		for _, m := range ordered {
			options := []string{"rbind", "rprivate", "rw"}
			if m.ReadOnly {
				options[2] = "ro"
			}
			s.Mounts = append(s.Mounts, specs.Mount{
				Destination: m.ContainerPath,
				Source:      m.HostPath,
				Type:        "bind",
				Options:     options,
			})
		}
		return nil
	}
}

// pathDepth is CRI's orderedMounts key: the number of path components.
func pathDepth(p string) int {
	return len(strings.Split(filepath.Clean(p), string(filepath.Separator)))
}

// namespaceOpt joins the sandbox's pinned namespace, or the host's when the
// sandbox has none of that kind.
func namespaceOpt(kind specs.LinuxNamespaceType, path string) oci.SpecOpts {
	if path == "" {
		return oci.WithHostNamespace(kind)
	}
	return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: kind, Path: path})
}

func withGID(gid uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.User.GID = gid
		return nil
	}
}

// capNames turns Kubernetes capability names (NET_ADMIN) into the OCI ones
// (CAP_NET_ADMIN); ALL stays ALL.
func capNames(caps []corev1.Capability) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		s := strings.ToUpper(string(c))
		if s != "ALL" && !strings.HasPrefix(s, "CAP_") {
			s = "CAP_" + s
		}
		out = append(out, s)
	}
	return out
}
