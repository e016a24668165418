package logs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Budget holds all the container logs under one root directory (the
// runtime's <state>/pods) to a total size. Rotation bounds each container
// instance's log; the budget bounds their sum, which otherwise grows with
// the number of containers.
//
// When the total is over, Enforce removes, oldest first (by modification
// time):
//
//  1. rotated files (<attempt>.log.N) of any container,
//  2. then the logs of earlier attempts (<attempt>.log with a newer
//     attempt beside it: what `kubectl logs --previous` reads).
//
// It never removes the newest attempt's <attempt>.log of a container nor
// a file a Writer of this Budget has open: that is the file a running
// container writes to, or the only log left of a finished one. So the
// budget holds as long as the containers' current files fit in it; see
// docs/runtime.md, "Container logs".
//
// A file a Writer has open counts at its MaxSize, not at its size: it
// grows up to that without a rotation, so the room is kept for it, and
// the total stays within the budget between enforcements too. The budget
// is enforced when a Writer opens and after each rotation.
type Budget struct {
	root   string
	max    int64
	report func(removed []string, err error)

	enforceMu sync.Mutex // one Enforce at a time

	mu   sync.Mutex         // guards open
	open map[string]openLog // by path
}

// openLog is a file Writers have open (adoption may open one twice).
type openLog struct {
	writers int
	maxSize int64 // what it may grow to before it rotates
}

// NewBudget holds the logs under root to max bytes (DefaultConfig's
// MaxTotal when max is 0). report, when not nil, receives what each
// enforcement a Writer caused (at its open or a rotation) removed, and its
// error: no caller is there to return them to.
func NewBudget(root string, max int64, report func(removed []string, err error)) *Budget {
	if max <= 0 {
		max = DefaultConfig().MaxTotal
	}
	return &Budget{root: root, max: max, report: report, open: map[string]openLog{}}
}

// NewWriter opens a Writer whose file the budget never removes while it is
// open, and has the budget enforced: now, with room kept for the new file,
// and after each of its rotations.
func (b *Budget) NewWriter(path string, cfg Config) (*Writer, error) {
	w, err := NewWriter(path, cfg)
	if err != nil {
		return nil, err
	}
	w.budget = b
	b.mu.Lock()
	o := b.open[path]
	o.writers++
	o.maxSize = max(o.maxSize, w.cfg.MaxSize)
	b.open[path] = o
	b.mu.Unlock()
	b.enforceAndReport()
	return w, nil
}

func (b *Budget) closed(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := b.open[path]
	if o.writers--; o.writers <= 0 {
		delete(b.open, path)
		return
	}
	b.open[path] = o
}

// openFile says whether a Writer has path open and what it may grow to.
func (b *Budget) openFile(path string) (maxSize int64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.open[path]
	return o.maxSize, ok
}

func (b *Budget) rotated() { b.enforceAndReport() }

func (b *Budget) enforceAndReport() {
	removed, err := b.Enforce()
	if b.report != nil && (len(removed) > 0 || err != nil) {
		b.report(removed, err)
	}
}

// logFile is one file Enforce may count or remove.
type logFile struct {
	path    string
	size    int64
	modTime time.Time
	attempt int
	rotated bool // <attempt>.log.N
}

// Enforce removes files, in the order the type's comment gives, until the
// logs under the root take at most the budget's maximum or nothing more
// may go. It returns the files it removed. A missing root holds no logs.
func (b *Budget) Enforce() (removed []string, err error) {
	b.enforceMu.Lock()
	defer b.enforceMu.Unlock()
	files, err := scanLogs(b.root)
	if err != nil {
		return nil, err
	}
	var total int64
	newest := map[string]int{} // container directory → its newest attempt
	open := map[string]bool{}
	for _, f := range files {
		size := f.size
		if maxSize, ok := b.openFile(f.path); ok {
			open[f.path] = true
			size = max(size, maxSize)
		}
		total += size
		dir := filepath.Dir(f.path)
		if n, ok := newest[dir]; !ok || f.attempt > n {
			newest[dir] = f.attempt
		}
	}
	if total <= b.max {
		return nil, nil
	}
	var rotated, previous []logFile
	for _, f := range files {
		switch {
		case f.rotated:
			rotated = append(rotated, f)
		case f.attempt < newest[filepath.Dir(f.path)] && !open[f.path]:
			previous = append(previous, f)
		}
	}
	oldestFirst := func(a, b logFile) int {
		return cmp.Or(a.modTime.Compare(b.modTime), strings.Compare(a.path, b.path))
	}
	slices.SortFunc(rotated, oldestFirst)
	slices.SortFunc(previous, oldestFirst)
	var errs []error
	for _, f := range append(rotated, previous...) {
		if total <= b.max {
			break
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove log %q over the %d-byte budget: %w", f.path, b.max, err))
			continue
		}
		total -= f.size
		removed = append(removed, f.path)
	}
	return removed, errors.Join(errs...)
}

// scanLogs lists the log files under root: <attempt>.log and
// <attempt>.log.N at any depth (<pod>/<container>/ in practice). Other
// files are neither counted nor removed.
func scanLogs(root string) ([]logFile, error) {
	var out []logFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a pod cleaned up)
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		attempt, rotated, ok := parseLogName(d.Name())
		if !ok {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, logFile{path: path, size: info.Size(), modTime: info.ModTime(), attempt: attempt, rotated: rotated})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list logs under %q: %w", root, err)
	}
	return out, nil
}

// parseLogName parses <attempt>.log and <attempt>.log.N.
func parseLogName(name string) (attempt int, rotated, ok bool) {
	base, suffix, found := strings.Cut(name, ".log")
	if !found {
		return 0, false, false
	}
	attempt, ok = parseCount(base)
	if !ok {
		return 0, false, false
	}
	if suffix == "" {
		return attempt, false, true
	}
	n, ok := parseCount(strings.TrimPrefix(suffix, "."))
	if !ok || n < 1 || !strings.HasPrefix(suffix, ".") {
		return 0, false, false
	}
	return attempt, true, true
}

// parseCount parses a decimal number without sign or leading zeros.
func parseCount(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}
