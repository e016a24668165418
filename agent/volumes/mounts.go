package volumes

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// ContainerMounts is kubelet's makeMounts (pkg/kubelet/kubelet_pods.go) for
// container c of pod, whose volumes SetUp prepared under podDir: one bind
// mount per volumeMount, from the volume's path (joined with subPath, whose
// directory is made when missing, with the volume's mode). Errors are what
// kubelet reports as CreateContainerConfigError.
func ContainerMounts(pod *corev1.Pod, c *corev1.Container, podDir string) ([]runtime.Mount, error) {
	var out []runtime.Mount
	for i, m := range c.VolumeMounts {
		field := fmt.Sprintf("volumeMounts[%d]", i)
		vol := findVolume(pod, m.Name)
		if vol == nil {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", m.Name, c.Name)
		}
		if p := m.MountPropagation; p != nil && *p != corev1.MountPropagationNone {
			return nil, fmt.Errorf("container %q: %s.mountPropagation %s is not supported by podboot yet (only None)", c.Name, field, *p)
		}
		if r := m.RecursiveReadOnly; r != nil && *r != corev1.RecursiveReadOnlyDisabled {
			return nil, fmt.Errorf("container %q: %s.recursiveReadOnly %s is not supported by podboot yet", c.Name, field, *r)
		}
		if m.SubPathExpr != "" {
			return nil, fmt.Errorf("container %q: %s.subPathExpr is not supported by podboot yet", c.Name, field)
		}
		var hostPath string
		switch {
		case vol.EmptyDir != nil:
			hostPath = EmptyDirPath(podDir, vol.Name)
		case vol.HostPath != nil:
			hostPath = vol.HostPath.Path
		default:
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", m.Name, c.Name)
		}
		if m.SubPath != "" {
			p, err := subPath(hostPath, m.SubPath, m.Name, c.Name)
			if err != nil {
				return nil, err
			}
			hostPath = p
		}
		containerPath := m.MountPath
		if !filepath.IsAbs(containerPath) {
			containerPath = "/" + containerPath // volumeutil.MakeAbsolutePath
		}
		out = append(out, runtime.Mount{HostPath: hostPath, ContainerPath: containerPath, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

// subPath is makeMounts' subPath step: no absolute path, no backsteps, the
// directory made with the volume's mode when missing, and (mount-utils'
// subpath check) nothing that resolves outside the volume.
func subPath(volumePath, sub, volume, container string) (string, error) {
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
	}
	if err := noBacksteps(sub); err != nil {
		return "", fmt.Errorf("unable to provision SubPath `%s`: %w", sub, err)
	}
	p := filepath.Join(volumePath, sub)
	if _, err := os.Lstat(p); os.IsNotExist(err) {
		fi, err := os.Stat(volumePath)
		if err != nil {
			return "", err // kubelet's GetMode error, as it is
		}
		if err := makeSubPathDirs(volumePath, sub, fi.Mode().Perm()); err != nil {
			return "", &SubPathError{Op: "create subPath directory", Volume: volume, Container: container, Err: err}
		}
	}
	resolved, err := resolveSubPath(volumePath, p, sub, volume)
	if err != nil {
		return "", &SubPathError{Op: "prepare subPath", Volume: volume, Container: container, Err: err}
	}
	return resolved, nil
}

// resolveSubPath is p (volumePath joined with sub) with its symlinks
// resolved, which must stay inside the volume.
func resolveSubPath(volumePath, p, sub, volume string) (string, error) {
	base, err := filepath.EvalSymlinks(volumePath)
	if err != nil {
		return "", fmt.Errorf("resolve the path of volume %q: %w", volume, err)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("resolve subPath %q of volume %q: %w", sub, volume, err)
	}
	if resolved != base && !strings.HasPrefix(resolved, base+string(filepath.Separator)) {
		return "", fmt.Errorf("subPath %q resolves to %q, outside the volume's path %q", sub, resolved, base)
	}
	return resolved, nil
}

// SubPathError is a volumeMount's subPath that could not be made or
// resolved. Its message is kubelet's, which keeps the node's paths out of
// the pod's status and events ("Don't pass detailed error back to the
// user"); the cause stays in the chain (Unwrap) and in the agent's log
// (LogValue), where kubelet's line names only the container and volume
// and so leaves a person nothing to fix from.
type SubPathError struct {
	Op        string // kubelet's words: "create subPath directory", "prepare subPath"
	Volume    string // the volumeMount's name
	Container string
	Err       error
}

func (e *SubPathError) Error() string {
	return fmt.Sprintf("failed to %s for volumeMount %q of container %q", e.Op, e.Volume, e.Container)
}

func (e *SubPathError) Unwrap() error { return e.Err }

// LogValue is the message with its cause, for the agent's log.
func (e *SubPathError) LogValue() slog.Value {
	return slog.StringValue(e.Error() + ": " + e.Err.Error())
}

func findVolume(pod *corev1.Pod, name string) *corev1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

// makeSubPathDirs makes the missing directories of sub under volumePath
// with the volume's permissions, chmod'ed past the umask as SafeMakeDir's
// are.
func makeSubPathDirs(volumePath, sub string, perm os.FileMode) error {
	p := volumePath
	for _, part := range strings.Split(filepath.Clean(sub), string(filepath.Separator)) {
		p = filepath.Join(p, part)
		if err := os.Mkdir(p, perm); err != nil {
			if os.IsExist(err) {
				continue
			}
			return err
		}
		if err := os.Chmod(p, perm); err != nil {
			return err
		}
	}
	return nil
}
