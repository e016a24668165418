// Package crashfs is an in-memory file system (it satisfies trial.FS) with
// a durability model and a crash switch, for testing code that must
// survive a power cut at any point.
//
// Durability follows POSIX at its strictest: a file's data becomes durable
// when it is fsynced (WriteFile's last step); a directory's entries (a
// create, rename, remove or symlink in it) become durable when that
// directory is synced, all together, and not before. PowerCut keeps only
// what is durable; a file whose last write was not fsynced comes back torn
// (the first half of what was written). Clone keeps everything, which is
// what a killed process leaves behind (the kernel still holds its writes,
// durable or not).
//
// Every mutating operation is counted: each create or truncate-and-write,
// fsync, rename, symlink, directory made, entry removed (RemoveAll removes
// one entry at a time, children first) and directory sync. CrashAt(k)
// makes the k-th one from now fail with ErrCrashed without happening —
// except a WriteFile crashed at its fsync, whose data was written but not
// fsynced — and every operation after it fail too, as if the machine had
// stopped there.
package crashfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is returned by the operation the crash hit and every one
// after it.
var ErrCrashed = errors.New("crashfs: crashed")

// FS is the file system. Its zero value is not usable: use New.
type FS struct {
	mu      sync.Mutex
	root    *node
	ops     int // mutating operations so far
	crashAt int // the operation that crashes; -1 for none
	crashed bool
}

type node struct {
	mode fs.FileMode // fs.ModeDir, fs.ModeSymlink or a regular file's permissions

	data    []byte // files: what a reader sees
	synced  []byte // files: what the flash holds
	durable bool   // files: data == synced

	target string // symlinks

	entries       map[string]*node // directories: what a reader sees
	syncedEntries map[string]*node // directories: what the flash holds
}

func (n *node) isDir() bool { return n.mode.IsDir() }

// New is an empty, durable file system holding only "/".
func New() *FS {
	root := &node{mode: fs.ModeDir | 0o755, entries: map[string]*node{}, syncedEntries: map[string]*node{}}
	return &FS{root: root, crashAt: -1}
}

// CrashAt makes the k-th mutating operation from now (0 = the next one)
// crash; negative k disarms it.
func (f *FS) CrashAt(k int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k < 0 {
		f.crashAt = -1
		return
	}
	f.crashAt = f.ops + k
}

// Ops is the number of mutating operations so far.
func (f *FS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Crashed reports whether the crash happened.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// step counts one mutating operation; an error means it must not happen.
func (f *FS) step() error {
	if f.crashed {
		return ErrCrashed
	}
	if f.ops == f.crashAt {
		f.crashed = true
		return ErrCrashed
	}
	f.ops++
	return nil
}

// PowerCut is the file system after a power cut now: only what was
// durable, all of it durable, no crash armed.
func (f *FS) PowerCut() *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	memo := map[*node]*node{}
	var durable func(n *node) *node
	durable = func(n *node) *node {
		if c, ok := memo[n]; ok {
			return c
		}
		c := &node{mode: n.mode, target: n.target}
		memo[n] = c
		switch {
		case n.isDir():
			c.entries = map[string]*node{}
			for name, child := range n.syncedEntries {
				c.entries[name] = durable(child)
			}
			c.syncedEntries = maps.Clone(c.entries)
		case n.mode&fs.ModeSymlink != 0:
		default:
			if n.durable {
				c.data = slices.Clone(n.synced)
			} else {
				c.data = slices.Clone(n.data[:len(n.data)/2]) // torn
			}
			c.synced, c.durable = slices.Clone(c.data), true
		}
		return c
	}
	return &FS{root: durable(f.root), crashAt: -1}
}

// Clone is a copy of the file system as it is, durable or not: what a
// killed process leaves behind. No crash is armed in the copy.
func (f *FS) Clone() *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	memo := map[*node]*node{}
	var clone func(n *node) *node
	clone = func(n *node) *node {
		if c, ok := memo[n]; ok {
			return c
		}
		c := &node{mode: n.mode, target: n.target, durable: n.durable,
			data: slices.Clone(n.data), synced: slices.Clone(n.synced)}
		memo[n] = c
		if n.isDir() {
			c.entries, c.syncedEntries = map[string]*node{}, map[string]*node{}
			for name, child := range n.entries {
				c.entries[name] = clone(child)
			}
			for name, child := range n.syncedEntries {
				c.syncedEntries[name] = clone(child)
			}
		}
		return c
	}
	return &FS{root: clone(f.root), crashAt: -1}
}

// Tree lists every entry under dir as path relative to dir → "dir",
// "-> target" or the file's content; for assertions.
func (f *FS) Tree(dir string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.lookup("tree", dir)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, pathErr("tree", dir, syscall.ENOTDIR)
	}
	out := map[string]string{}
	var walk func(prefix string, n *node)
	walk = func(prefix string, n *node) {
		for name, c := range n.entries {
			p := path.Join(prefix, name)
			switch {
			case c.isDir():
				out[p] = "dir"
				walk(p, c)
			case c.mode&fs.ModeSymlink != 0:
				out[p] = "-> " + c.target
			default:
				out[p] = string(c.data)
			}
		}
	}
	walk("", n)
	return out, nil
}

func pathErr(op, p string, err error) error { return &fs.PathError{Op: op, Path: p, Err: err} }

func split(p string) ([]string, error) {
	if !path.IsAbs(p) {
		return nil, fmt.Errorf("crashfs: path %q is not absolute", p)
	}
	p = path.Clean(p)
	if p == "/" {
		return nil, nil
	}
	return strings.Split(p[1:], "/"), nil
}

// lookup finds p; symlinks are not followed.
func (f *FS) lookup(op, p string) (*node, error) {
	parts, err := split(p)
	if err != nil {
		return nil, pathErr(op, p, err)
	}
	n := f.root
	for _, part := range parts {
		if !n.isDir() {
			return nil, pathErr(op, p, syscall.ENOTDIR)
		}
		c, ok := n.entries[part]
		if !ok {
			return nil, pathErr(op, p, fs.ErrNotExist)
		}
		n = c
	}
	return n, nil
}

// parent finds p's directory and p's name in it.
func (f *FS) parent(op, p string) (*node, string, error) {
	parts, err := split(p)
	if err != nil {
		return nil, "", pathErr(op, p, err)
	}
	if len(parts) == 0 {
		return nil, "", pathErr(op, p, syscall.EINVAL)
	}
	dir, err := f.lookup(op, "/"+strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return nil, "", pathErr(op, p, fs.ErrNotExist)
	}
	if !dir.isDir() {
		return nil, "", pathErr(op, p, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

func (f *FS) check(op, p string) error {
	if f.crashed {
		return pathErr(op, p, ErrCrashed)
	}
	return nil
}

// MkdirAll makes p and its missing parents, one counted operation each.
func (f *FS) MkdirAll(p string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("mkdir", p); err != nil {
		return err
	}
	parts, err := split(p)
	if err != nil {
		return pathErr("mkdir", p, err)
	}
	n := f.root
	for _, part := range parts {
		c, ok := n.entries[part]
		if !ok {
			if err := f.step(); err != nil {
				return pathErr("mkdir", p, err)
			}
			c = &node{mode: fs.ModeDir | perm.Perm(), entries: map[string]*node{}, syncedEntries: map[string]*node{}}
			n.entries[part] = c
		}
		if !c.isDir() {
			return pathErr("mkdir", p, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

// WriteFile creates or truncates p and writes r into it (one operation),
// then fsyncs it (another).
func (f *FS) WriteFile(p string, r io.Reader, perm fs.FileMode) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return pathErr("write", p, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", p); err != nil {
		return err
	}
	dir, name, err := f.parent("open", p)
	if err != nil {
		return err
	}
	n, ok := dir.entries[name]
	if ok && n.mode.Type() != 0 {
		return pathErr("open", p, syscall.EISDIR)
	}
	if err := f.step(); err != nil {
		return pathErr("write", p, err)
	}
	if !ok {
		n = &node{mode: perm.Perm()}
		dir.entries[name] = n
	}
	n.data, n.durable = slices.Clone(b), false
	if err := f.step(); err != nil {
		return pathErr("sync", p, err)
	}
	n.synced, n.durable = slices.Clone(b), true
	return nil
}

// ReadFile reads p.
func (f *FS) ReadFile(p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("open", p); err != nil {
		return nil, err
	}
	n, err := f.lookup("open", p)
	if err != nil {
		return nil, err
	}
	if n.mode.Type() != 0 {
		return nil, pathErr("read", p, syscall.EISDIR)
	}
	return slices.Clone(n.data), nil
}

// ReadDir lists the directory p, sorted by name.
func (f *FS) ReadDir(p string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("open", p); err != nil {
		return nil, err
	}
	n, err := f.lookup("open", p)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, pathErr("readdirent", p, syscall.ENOTDIR)
	}
	var out []fs.DirEntry
	for name, c := range n.entries {
		out = append(out, dirEntry{name: name, n: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Rename moves oldpath to newpath, replacing a file, symlink or empty
// directory there.
func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("rename", oldpath); err != nil {
		return err
	}
	odir, oname, err := f.parent("rename", oldpath)
	if err != nil {
		return err
	}
	n, ok := odir.entries[oname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	ndir, nname, err := f.parent("rename", newpath)
	if err != nil {
		return err
	}
	if old, ok := ndir.entries[nname]; ok && old != n {
		switch {
		case old.isDir() && !n.isDir():
			return pathErr("rename", newpath, syscall.EISDIR)
		case !old.isDir() && n.isDir():
			return pathErr("rename", newpath, syscall.ENOTDIR)
		case old.isDir() && len(old.entries) > 0:
			return pathErr("rename", newpath, syscall.ENOTEMPTY)
		}
	}
	if err := f.step(); err != nil {
		return pathErr("rename", oldpath, err)
	}
	delete(odir.entries, oname)
	ndir.entries[nname] = n
	return nil
}

// Symlink makes link point at target.
func (f *FS) Symlink(target, link string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("symlink", link); err != nil {
		return err
	}
	dir, name, err := f.parent("symlink", link)
	if err != nil {
		return err
	}
	if _, ok := dir.entries[name]; ok {
		return pathErr("symlink", link, fs.ErrExist)
	}
	if err := f.step(); err != nil {
		return pathErr("symlink", link, err)
	}
	dir.entries[name] = &node{mode: fs.ModeSymlink | 0o777, target: target}
	return nil
}

// Readlink is the target of the symlink p.
func (f *FS) Readlink(p string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("readlink", p); err != nil {
		return "", err
	}
	n, err := f.lookup("readlink", p)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", pathErr("readlink", p, syscall.EINVAL)
	}
	return n.target, nil
}

// RemoveAll removes p and everything under it, one counted operation per
// entry, children first; a missing p is no error (and no operation).
func (f *FS) RemoveAll(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("unlinkat", p); err != nil {
		return err
	}
	dir, name, err := f.parent("unlinkat", p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	n, ok := dir.entries[name]
	if !ok {
		return nil
	}
	if err := f.removeChildren(p, n); err != nil {
		return err
	}
	if err := f.step(); err != nil {
		return pathErr("unlinkat", p, err)
	}
	delete(dir.entries, name)
	return nil
}

func (f *FS) removeChildren(p string, n *node) error {
	if !n.isDir() {
		return nil
	}
	names := make([]string, 0, len(n.entries))
	for name := range n.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := n.entries[name]
		cp := path.Join(p, name)
		if err := f.removeChildren(cp, c); err != nil {
			return err
		}
		if err := f.step(); err != nil {
			return pathErr("unlinkat", cp, err)
		}
		delete(n.entries, name)
	}
	return nil
}

// SyncDir makes the directory p's entries durable.
func (f *FS) SyncDir(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("sync", p); err != nil {
		return err
	}
	n, err := f.lookup("open", p)
	if err != nil {
		return err
	}
	if !n.isDir() {
		return pathErr("sync", p, syscall.ENOTDIR)
	}
	if err := f.step(); err != nil {
		return pathErr("sync", p, err)
	}
	n.syncedEntries = maps.Clone(n.entries)
	return nil
}

type dirEntry struct {
	name string
	n    *node
}

func (e dirEntry) Name() string               { return e.name }
func (e dirEntry) IsDir() bool                { return e.n.isDir() }
func (e dirEntry) Type() fs.FileMode          { return e.n.mode.Type() }
func (e dirEntry) Info() (fs.FileInfo, error) { return fileInfo(e), nil }

type fileInfo dirEntry

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return int64(len(i.n.data)) }
func (i fileInfo) Mode() fs.FileMode  { return i.n.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.n.isDir() }
func (i fileInfo) Sys() any           { return nil }
