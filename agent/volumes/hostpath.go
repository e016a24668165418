package volumes

import (
	"errors"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// setUpHostPath is hostPathMounter.SetUp (pkg/volume/hostpath/host_path.go):
// no backsteps in the path, then the type check, which creates the path for
// DirectoryOrCreate (0755, parents too) and FileOrCreate (0644, the parent
// must exist).
func setUpHostPath(src *corev1.HostPathVolumeSource) error {
	path := src.Path
	if err := noBacksteps(path); err != nil {
		return fmt.Errorf("invalid HostPath `%s`: %v", path, err)
	}
	if src.Type == nil || *src.Type == corev1.HostPathUnset {
		return nil
	}
	switch t := *src.Type; t {
	case corev1.HostPathDirectoryOrCreate:
		if !exists(path) {
			return makeDir(path)
		}
		return typeMatchedOrError(path, corev1.HostPathDirectory, "directory")
	case corev1.HostPathDirectory:
		return typeMatchedOrError(path, corev1.HostPathDirectory, "directory")
	case corev1.HostPathFileOrCreate:
		if !exists(path) {
			return makeFile(path)
		}
		return typeMatchedOrError(path, corev1.HostPathFile, "file")
	case corev1.HostPathFile:
		return typeMatchedOrError(path, corev1.HostPathFile, "file")
	case corev1.HostPathSocket:
		return typeMatchedOrError(path, corev1.HostPathSocket, "socket file")
	case corev1.HostPathCharDev:
		return typeMatchedOrError(path, corev1.HostPathCharDev, "character device")
	case corev1.HostPathBlockDev:
		return typeMatchedOrError(path, corev1.HostPathBlockDev, "block device")
	default:
		return fmt.Errorf("%s is an invalid volume type", t)
	}
}

// noBacksteps is pkg/volume/validation's ValidatePathNoBacksteps.
func noBacksteps(path string) error {
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return errors.New("must not contain '..'")
		}
	}
	return nil
}

// exists is host_path.go's: a path that cannot be stat'ed does not exist.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func typeMatchedOrError(path string, want corev1.HostPathType, description string) error {
	if !exists(path) {
		return fmt.Errorf("hostPath %s doesn't exist", path)
	}
	got, err := fileType(path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, description, err)
	}
	if got != want {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, description, got)
	}
	return nil
}

// fileType is mount-utils' getFileType (hostutil), which follows symlinks.
func fileType(path string) (corev1.HostPathType, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("path %q does not exist", path)
	}
	if err != nil {
		return "", err
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		return corev1.HostPathDirectory, nil
	case mode.IsRegular():
		return corev1.HostPathFile, nil
	case mode&os.ModeSocket != 0:
		return corev1.HostPathSocket, nil
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice != 0:
		return corev1.HostPathCharDev, nil
	case mode&os.ModeDevice != 0:
		return corev1.HostPathBlockDev, nil
	}
	return "", errors.New("only recognise file, directory, socket, block device and character device")
}

// makeDir is host_path.go's: MkdirAll 0755; an existing path is fine.
func makeDir(path string) error {
	if err := os.MkdirAll(path, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// makeFile is host_path.go's: an empty file 0644, the parent must exist;
// an existing path is fine.
func makeFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE, 0o644)
	if f != nil {
		f.Close()
	}
	if err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}
