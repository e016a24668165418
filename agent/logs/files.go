package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PodDir is a pod's log directory under root, named as kubelet names it
// under /var/log/pods: <namespace>_<name>_<uid>. Each container has a
// directory in it, holding <attempt>.log and its rotated files.
func PodDir(root, namespace, name, uid string) string {
	return filepath.Join(root, namespace+"_"+name+"_"+uid)
}

// PodUID returns the UID in a pod log directory's name, as kubelet's
// parsePodUIDFromLogsDirectory does: the part after the last "_" (a
// namespace or a pod name cannot hold one). ok is false for a name that
// is not <namespace>_<name>_<uid>.
func PodUID(dirName string) (uid string, ok bool) {
	parts := strings.Split(dirName, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", false
	}
	return parts[2], true
}

// RemoveFiles removes the log at path and its rotated files, as kubelet's
// container log manager cleans a removed container's log (Clean). Files
// that are already gone are not an error.
func RemoveFiles(path string) error {
	nums, err := rotatedNumbers(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove log %q: %w", path, err)
	}
	var errs []error
	for _, n := range nums {
		if err := os.Remove(rotatedName(path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove rotated log %q: %w", rotatedName(path, n), err))
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove log %q: %w", path, err))
	}
	return errors.Join(errs...)
}
