package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadDir reads every manifest file directly in dir (not recursively), in
// file-name order, and decodes them into one Set. It keeps no state: a
// file that fails is reported and contributes nothing.
func LoadDir(dir string, opts Options) *Set {
	names, err := manifestFiles(dir)
	if err != nil {
		return &Set{Errors: []*DocumentError{{File: dir, Index: -1, Err: err}}}
	}
	results := make([]*fileResult, 0, len(names))
	for _, name := range names {
		results = append(results, readAndDecode(dir, name, opts))
	}
	return merge(results)
}

func readAndDecode(dir, name string, opts Options) *fileResult {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return unreadable(name, err)
	}
	return decodeFile(name, data, opts)
}

func unreadable(name string, err error) *fileResult {
	return &fileResult{broken: true, errors: []*DocumentError{{File: name, Index: -1, Err: fmt.Errorf("read manifest: %w", err)}}}
}

// manifestFiles lists the manifest file names in dir, sorted.
func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read manifest directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !IsManifestFile(e.Name()) {
			continue
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

// IsManifestFile reports whether a file name in the manifest directory is
// read: "*.yaml", "*.yml" or "*.json", and not hidden nor an editor's or
// package manager's temporary or backup file.
func IsManifestFile(name string) bool {
	switch {
	case name == "" || strings.HasPrefix(name, "."): // hidden, vim ".x.swp", emacs ".#x"
		return false
	case strings.HasSuffix(name, "~"), strings.HasSuffix(name, ".tmp"): // backups, temp files
		return false
	case name == "4913": // vim's probe file
		return false
	case strings.Contains(name, ".dpkg-"): // .dpkg-new, .dpkg-old, .dpkg-dist, ...
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
