// Package atomicfile writes files so that a power cut leaves either the old
// content or the new, never a torn mix: the data goes to a temporary file
// beside the target, is synced, renamed over it (google/renameio), and the
// directory is synced so the rename itself is on the flash.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Write replaces path with data, atomically and durably, with mode perm
// (not the old file's: a key once written 0644 becomes 0600 when asked).
// The temporary file is made in path's directory: renameio's default
// probes TMPDIR with two test files in that directory on every write,
// which is flash wear for nothing.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(perm))
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir makes the directory's entries (a rename, a new file) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
