package trial

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// FS is every file operation the machine (and a generation's fill
// function) performs, so tests can inject crashes between any two of them.
// Paths are absolute. Only WriteFile and SyncDir make anything durable:
// a directory's entries (a create, rename, remove or symlink) reach the
// flash when the directory is synced, a file's data when it is fsynced.
type FS interface {
	MkdirAll(path string, perm fs.FileMode) error
	// WriteFile creates or truncates path, writes r into it and fsyncs it:
	// the data is durable once it returns (its directory entry is not).
	WriteFile(path string, r io.Reader, perm fs.FileMode) error
	ReadFile(path string) ([]byte, error)
	ReadDir(path string) ([]fs.DirEntry, error)
	Rename(oldpath, newpath string) error
	Symlink(target, link string) error
	Readlink(path string) (string, error)
	RemoveAll(path string) error
	// SyncDir fsyncs the directory: its entries are durable once it returns.
	SyncDir(path string) error
}

// OSFS is the real file system.
func OSFS() FS { return osFS{} }

type osFS struct{}

func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

func (osFS) WriteFile(path string, r io.Reader, perm fs.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return nil
}

func (osFS) ReadFile(path string) ([]byte, error)       { return os.ReadFile(path) }
func (osFS) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }
func (osFS) Rename(oldpath, newpath string) error       { return os.Rename(oldpath, newpath) }
func (osFS) Symlink(target, link string) error          { return os.Symlink(target, link) }
func (osFS) Readlink(path string) (string, error)       { return os.Readlink(path) }
func (osFS) RemoveAll(path string) error                { return os.RemoveAll(path) }

func (osFS) SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return err
	}
	return nil
}
