// Package hosttools checks that the host programs the firmware builder runs
// are installed, and says which apt-get command installs the missing ones.
package hosttools

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Packages maps each tool the builder runs to the Debian package that
// provides it. Files (not on PATH) are absolute paths.
var packages = map[string]string{
	"apt-get":                   "apt",
	"dpkg-deb":                  "dpkg",
	"mkfs.ext4":                 "e2fsprogs",
	"debugfs":                   "e2fsprogs",
	"dumpe2fs":                  "e2fsprogs",
	"mkfs.vfat":                 "dosfstools",
	"mcopy":                     "mtools",
	"mmd":                       "mtools",
	"mdir":                      "mtools",
	"mtype":                     "mtools",
	"sfdisk":                    "fdisk",
	"aarch64-linux-gnu-gcc":     "gcc-aarch64-linux-gnu",
	"aarch64-linux-gnu-objcopy": "binutils-aarch64-linux-gnu",
	"pkg-config":                "pkg-config",
	"/usr/lib/aarch64-linux-gnu/libseccomp.a": "libseccomp-dev:arm64",
	"/usr/aarch64-linux-gnu/lib/libc.a":       "libc6-dev-arm64-cross",
}

// Lookup finds a tool on PATH (or checks a file path).
type Lookup func(name string) error

// DefaultLookup uses exec.LookPath, and os.Stat for absolute paths.
func DefaultLookup(name string) error {
	if strings.HasPrefix(name, "/") {
		_, err := os.Stat(name)
		return err
	}
	_, err := exec.LookPath(name)
	return err
}

// MissingError lists missing tools and the command that installs them.
type MissingError struct {
	Tools    []string
	Packages []string
}

func (e *MissingError) Error() string {
	cmd := "apt-get install -y " + strings.Join(e.Packages, " ")
	for _, p := range e.Packages {
		if strings.HasSuffix(p, ":arm64") {
			cmd = "dpkg --add-architecture arm64 && apt-get update && " + cmd
			break
		}
	}
	return fmt.Sprintf("missing host tools: %s; install them with: %s (or: make deps)", strings.Join(e.Tools, ", "), cmd)
}

// Require returns a *MissingError naming every tool of names that lookup
// does not find, or nil.
func Require(lookup Lookup, names ...string) error {
	var e MissingError
	for _, n := range names {
		if lookup(n) == nil {
			continue
		}
		e.Tools = append(e.Tools, n)
		p, ok := packages[n]
		if !ok {
			p = n
		}
		if !slices.Contains(e.Packages, p) {
			e.Packages = append(e.Packages, p)
		}
	}
	if len(e.Tools) == 0 {
		return nil
	}
	return &e
}
