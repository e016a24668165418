// Package modules resolves a board's kernel modules to files and their
// dependencies, in load order, from a Debian kernel package's
// lib/modules/<release> tree.
//
// Debian's package ships no modules.dep, so dependencies come from each
// module's .modinfo "depends=" field (read with debug/elf). crc32c_generic is
// forced before the modules that need a crc32c implementation at init
// (libcrc32c, ext4, nf_tables, nf_conntrack, nf_nat): they only name it as a
// soft dependency on the "crc32c" alias, and without it finit_module fails
// with a misleading ENOENT.
package modules

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/ulikunitz/xz"
)

// needsCRC32C lists modules that must load after crc32c_generic.
var needsCRC32C = []string{"libcrc32c", "ext4", "nf_tables", "nf_conntrack", "nf_nat"}

// Module is one resolved module.
type Module struct {
	Name string
	// Path is the file relative to lib/modules/<release>, e.g.
	// kernel/fs/ext4/ext4.ko (or .ko.xz as packaged).
	Path    string
	Depends []string
}

// InstalledPath is the module's path once written uncompressed.
func (m Module) InstalledPath() string {
	return strings.TrimSuffix(strings.TrimSuffix(m.Path, ".xz"), ".zst")
}

// Tree is a lib/modules/<release> directory.
type Tree struct {
	fsys    fs.FS
	files   map[string]string // module name → path
	builtin map[string]bool
}

// Name normalizes a module file or module name: ext4.ko.xz → ext4,
// nls_iso8859-1 → nls_iso8859_1.
func Name(file string) string {
	n := path.Base(file)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(n, ".ko"), "-", "_")
}

// Open indexes the module files under fsys (rooted at lib/modules/<release>)
// and reads modules.builtin when present.
func Open(fsys fs.FS) (*Tree, error) {
	t := &Tree{fsys: fsys, files: map[string]string{}, builtin: map[string]bool{}}
	err := fs.WalkDir(fsys, "kernel", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.Contains(path.Base(p), ".ko") {
			t.files[Name(p)] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules: %w", err)
	}
	if b, err := fs.ReadFile(fsys, "modules.builtin"); err == nil {
		for _, line := range strings.Fields(string(b)) {
			t.builtin[Name(line)] = true
		}
	}
	return t, nil
}

// Builtin reports whether name is built into the kernel.
func (t *Tree) Builtin(name string) bool { return t.builtin[Name(name)] }

// ReadFile returns a module file's bytes, decompressed.
func (t *Tree) ReadFile(m Module) ([]byte, error) {
	b, err := fs.ReadFile(t.fsys, m.Path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(m.Path, ".xz") {
		return b, nil
	}
	r, err := xz.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", m.Path, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", m.Path, err)
	}
	return out, nil
}

// Resolve returns the modules named by want and everything they depend on,
// dependencies first, and the names of wanted modules that are built in
// (nothing to load). Order is deterministic: a depth-first walk in the
// order of want, each module's dependencies in sorted order.
func (t *Tree) Resolve(want []string) (mods []Module, builtin []string, err error) {
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(name, parent string) error
	visit = func(name, parent string) error {
		if done[name] {
			return nil
		}
		if visiting[name] {
			return fmt.Errorf("module %s: dependency cycle through %s", name, parent)
		}
		p, ok := t.files[name]
		if !ok {
			if parent != "" {
				return fmt.Errorf("module %s (needed by %s): not in the kernel package", name, parent)
			}
			return fmt.Errorf("module %s: not in the kernel package (and not built in)", name)
		}
		visiting[name] = true
		m := Module{Name: name, Path: p}
		data, err := t.ReadFile(m)
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		info, err := ModInfo(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("module %s (%s): %w", name, p, err)
		}
		for _, d := range strings.Split(info["depends"], ",") {
			if d = strings.TrimSpace(d); d != "" {
				m.Depends = append(m.Depends, Name(d))
			}
		}
		slices.Sort(m.Depends)
		deps := m.Depends
		if slices.Contains(needsCRC32C, name) {
			deps = append([]string{"crc32c_generic"}, deps...)
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		visiting[name] = false
		done[name] = true
		mods = append(mods, m)
		return nil
	}
	for _, w := range want {
		n := Name(w)
		if t.builtin[n] {
			builtin = append(builtin, n)
			continue
		}
		if err := visit(n, ""); err != nil {
			return nil, nil, err
		}
	}
	return mods, builtin, nil
}

// LoadOrder is /lib/modules/load.order: one absolute path per line,
// dependencies first.
func LoadOrder(release string, mods []Module) []byte {
	var b bytes.Buffer
	for _, m := range mods {
		fmt.Fprintf(&b, "/lib/modules/%s/%s\n", release, m.InstalledPath())
	}
	return b.Bytes()
}

// ModInfo reads an ELF module's .modinfo section: NUL-separated key=value.
// A key that repeats (alias) keeps its first value.
func ModInfo(r io.ReaderAt) (map[string]string, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("read ELF: %w", err)
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, errors.New("no .modinfo section: not a kernel module")
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	info := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), len(data)+1)
	sc.Split(splitNUL)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if _, seen := info[k]; ok && !seen {
			info[k] = v
		}
	}
	return info, sc.Err()
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
