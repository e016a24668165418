// Package kmod loads the board's kernel modules in the order the image
// builder wrote to /lib/modules/load.order (dependencies first, resolved
// from each module's .modinfo at build time), with finit_module through
// u-root's kmodule. There is no modules.dep on the board and no depmod:
// the order is the whole dependency graph.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// ParseLoadOrder reads load.order: one absolute module path a line; blank
// lines and # comments are skipped. A relative path is an error naming its
// line, since the image builder always writes absolute ones.
func ParseLoadOrder(r io.Reader) ([]string, error) {
	var paths []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !filepath.IsAbs(line) {
			return nil, fmt.Errorf("load.order line %d: %q is not an absolute path", n, line)
		}
		paths = append(paths, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read load.order: %w", err)
	}
	return paths, nil
}

// Prober loads one module file; a seam so that the order and the error
// handling are tested without a kernel.
type Prober interface {
	Load(path string) error
}

// Finit loads with finit_module(2), decompressing .ko.xz/.ko.gz through
// kmodule when needed.
type Finit struct{}

func (Finit) Load(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return kmodule.FileInit(f, "", 0)
}

// Result is what happened to one module.
type Result struct {
	Path   string
	Err    error // nil: loaded or already there
	Loaded bool  // false with a nil Err: built in or already loaded
	Took   time.Duration
}

// Name is the module's name (ext4 for /lib/modules/6.1/kernel/fs/ext4/ext4.ko).
func (r Result) Name() string {
	base := filepath.Base(r.Path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return base
}

// LoadAll loads paths in order and goes on after a failure: a board
// without its network driver still mounts its flash and answers on the
// console. EEXIST (already loaded, or built into this kernel) counts as
// success.
func LoadAll(p Prober, paths []string, report func(Result)) (loaded int, failed error) {
	var errs []error
	for _, path := range paths {
		start := time.Now()
		err := p.Load(path)
		r := Result{Path: path, Took: time.Since(start)}
		switch {
		case err == nil:
			r.Loaded = true
			loaded++
		case errors.Is(err, unix.EEXIST):
		default:
			r.Err = fmt.Errorf("load module %s: %w", path, err)
			errs = append(errs, r.Err)
		}
		report(r)
	}
	return loaded, errors.Join(errs...)
}
