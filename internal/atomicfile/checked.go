package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// WriteChecked is Write with a last look: check runs once the new content
// is synced in its temporary file, right before the rename, and an error
// from it leaves path as it was (and is returned as is). Writers that
// share path with people (the flash's manifests) use it to refuse to
// replace a file that changed since they read it.
func WriteChecked(path string, data []byte, perm os.FileMode, check func() error) error {
	dir := filepath.Dir(path)
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(perm))
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := check(); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return SyncDir(dir)
}
