package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// emptyDirPluginDir is kubelet's plugin name kubernetes.io/empty-dir as
// escaped in pod directories (utilstrings.EscapeQualifiedName).
const emptyDirPluginDir = "kubernetes.io~empty-dir"

// Permissions of kubelet's makePodDataDirs and of an emptyDir
// (empty_dir.go defaultPerm).
const (
	podDirPerm   os.FileMode = 0o750
	emptyDirPerm os.FileMode = 0o777
)

// EmptyDirPath is where the emptyDir volume of a pod whose directory is
// podDir lives on the node.
func EmptyDirPath(podDir, volume string) string {
	return filepath.Join(podDir, "volumes", emptyDirPluginDir, volume)
}

// SetUpError is a volume that could not be set up, worded as kubelet's
// operation generator reports it in the FailedMount event
// (pkg/volume/util/operationexecutor: GenerateError("MountVolume.SetUp
// failed", err)).
type SetUpError struct {
	Volume string
	Err    error
}

func (e *SetUpError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.Volume, e.Err)
}

func (e *SetUpError) Unwrap() error { return e.Err }

// SetUp prepares every volume of pod (defaulted) under podDir: the pod's
// directories, the emptyDirs, the hostPath type checks. It is idempotent,
// as kubelet's SetUp, so it may run before every container start.
// nodeAllocatableMemory (bytes, 0 = unknown) bounds a memory-backed
// emptyDir. The first failure is returned as a *SetUpError.
func SetUp(pod *corev1.Pod, podDir string, nodeAllocatableMemory int64) error {
	for _, d := range []string{podDir, filepath.Join(podDir, "volumes")} {
		if err := os.MkdirAll(d, podDirPerm); err != nil {
			return fmt.Errorf("create pod directory %q: %w", d, err)
		}
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		var err error
		switch {
		case v.EmptyDir != nil:
			err = setUpEmptyDir(pod, v, EmptyDirPath(podDir, v.Name), nodeAllocatableMemory)
		case v.HostPath != nil:
			err = setUpHostPath(v.HostPath)
		default:
			err = fmt.Errorf("%s volumes are not supported by podboot yet", volumeKind(&v.VolumeSource))
		}
		if err != nil {
			return &SetUpError{Volume: v.Name, Err: err}
		}
	}
	return nil
}

// setUpEmptyDir is emptyDir.SetUpAt without fsGroup and quotas.
func setUpEmptyDir(pod *corev1.Pod, v *corev1.Volume, dir string, nodeAllocatableMemory int64) error {
	medium := v.EmptyDir.Medium
	switch {
	case medium == corev1.StorageMediumDefault:
		return setUpDir(dir)
	case medium == corev1.StorageMediumMemory:
		if err := setUpDir(dir); err != nil {
			return err
		}
		return mountTmpfs(dir, tmpfsSize(pod, v.EmptyDir, nodeAllocatableMemory))
	case strings.HasPrefix(string(medium), string(corev1.StorageMediumHugePages)):
		return fmt.Errorf("medium %s is not supported by podboot yet", medium)
	default:
		return fmt.Errorf("unknown storage medium %q", medium)
	}
}

// setUpDir is empty_dir.go's setupDir: create with 0777 and chmod, since
// the agent's umask clears bits MkdirAll asked for.
func setUpDir(dir string) error {
	if err := os.MkdirAll(dir, emptyDirPerm); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != emptyDirPerm {
		return os.Chmod(dir, emptyDirPerm)
	}
	return nil
}

// Remove tears down what SetUp made for the pod whose directory is podDir:
// memory-backed emptyDirs are unmounted, then the directory is deleted
// (kubelet's emptyDir TearDown and pod directory cleanup). hostPath
// volumes are left alone. A missing podDir is not an error.
func Remove(podDir string) error {
	root := filepath.Join(podDir, "volumes", emptyDirPluginDir)
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove pod volumes: %w", err)
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		mounted, err := isMountPoint(dir)
		if err != nil {
			return fmt.Errorf("remove emptyDir %q: %w", dir, err)
		}
		if mounted {
			if err := unmount(dir); err != nil {
				// Never delete through a mount that is still there.
				return fmt.Errorf("remove emptyDir %q: unmount: %w", dir, err)
			}
		}
	}
	if err := os.RemoveAll(podDir); err != nil {
		return fmt.Errorf("remove pod directory %q: %w", podDir, err)
	}
	return nil
}

// volumeKind names the source of a volume as the API spells its field.
func volumeKind(src *corev1.VolumeSource) string {
	switch {
	case src.ConfigMap != nil:
		return "configMap"
	case src.Secret != nil:
		return "secret"
	case src.Projected != nil:
		return "projected"
	case src.DownwardAPI != nil:
		return "downwardAPI"
	case src.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case src.Ephemeral != nil:
		return "ephemeral"
	case src.Image != nil:
		return "image"
	case src.CSI != nil:
		return "csi"
	case src.NFS != nil:
		return "nfs"
	}
	return "these"
}
