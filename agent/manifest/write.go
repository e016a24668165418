package manifest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/podboot/podboot/internal/atomicfile"
)

// Snapshot is what a Refresh or an Apply read: the Set delivered and, for
// each file, the content it was read from. Apply checks the files it
// rewrites against it.
type Snapshot struct {
	Set   *Set
	files map[string]fileSnap
}

type fileSnap struct {
	hash    [sha256.Size]byte // the content last read
	current bool              // the Set reflects that content (it settled, or was complete)
	broken  bool              // that content does not decode as a whole
}

func (d *dirState) snapshot(set *Set) *Snapshot {
	s := &Snapshot{Set: set, files: make(map[string]fileSnap, len(d.files))}
	for name, st := range d.files {
		s.files[name] = fileSnap{hash: st.hash, current: st.current, broken: st.result != nil && st.result.broken}
	}
	return s
}

// ConflictError is a write refused because of a file's state: it changed
// since it was read, it is still being written, or it does not decode as
// a whole. The API answers it with 409 Conflict.
type ConflictError struct {
	File   string    // the file's name in the directory
	Key    ObjectKey // the object the write was for
	Reason string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the manifest file %s %s", e.File, e.Reason)
}

// Conflict reasons.
const (
	reasonChanged = "changed since it was read; read the object again and retry"
	reasonPending = "is being written; retry once it is complete"
	reasonBroken  = "does not decode as a whole (half-written or not YAML); the API does not rewrite it until it is fixed or removed"
)

// ErrNotDefined is wrapped by Apply when a removal names an object no
// document defines.
var ErrNotDefined = errors.New("no manifest document defines the object")

// FileName is the file a new object's document goes to:
// <kind>_<namespace>_<name>.yaml, or <kind>_<name>.yaml for a Namespace
// (kind in lower case). "_" cannot occur in Kubernetes names, so the name
// is unique to the object.
func FileName(k ObjectKey) string {
	kind := strings.ToLower(k.Kind)
	if k.Namespace == "" {
		return kind + "_" + k.Name + ".yaml"
	}
	return kind + "_" + k.Namespace + "_" + k.Name + ".yaml"
}

// Refresh reads the directory now, as Run's next scan would, and delivers
// the Set to Run's onChange if it changed, before returning. A file that
// changed without being reported complete is waited for until it settles,
// at most twice the settle time; past that the Snapshot marks it still
// being written. Refresh waits for Run's first delivery.
func (w *Watcher) Refresh(ctx context.Context) (*Snapshot, error) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("read manifest directory %q: %w", w.dir, ctx.Err())
	}
	deadline := time.Now().Add(2 * w.settle)
	for {
		w.mu.Lock()
		if w.onChange == nil {
			w.mu.Unlock()
			return nil, fmt.Errorf("read manifest directory %q: the watcher is not running", w.dir)
		}
		w.takeHintsLocked()
		now := time.Now()
		set, next := w.state.scan(now)
		w.deliverLocked(set)
		snap := w.state.snapshot(set)
		w.mu.Unlock()
		if next == 0 || now.Add(next).After(deadline) {
			return snap, nil
		}
		t := time.NewTimer(next)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("read manifest directory %q: %w", w.dir, ctx.Err())
		}
	}
}

// fileEdit is what Apply does to one file.
type fileEdit struct {
	name    string
	changes []Change
	last    bool // removes a Namespace: written after the files of its objects

	before []byte // nil when the file does not exist
	exists bool
	after  []byte // nil: remove the file
	perm   os.FileMode
}

// Apply writes changes to the directory: a changed object's document is
// replaced in the file that defines it, a new object goes to FileName's
// file, a removed object's documents go from every file that defines it
// (a file left without documents is removed). Each file is written
// atomically and durably (atomicfile), and only if it is still exactly
// what snap read, checked right before the rename; otherwise nothing more
// is written and the error is a *ConflictError. The directory is then
// read again and the Set delivered to Run's onChange, so that the change
// is applied when Apply returns, and Run's own read of the new files
// later finds nothing new. A file that does not decode as a whole is never
// rewritten.
func (w *Watcher) Apply(ctx context.Context, snap *Snapshot, changes []Change) (*Snapshot, error) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("write manifests: %w", ctx.Err())
	}
	changes = withoutNoOps(snap, changes)
	if len(changes) == 0 {
		return snap, nil // nothing to write: the flash is not touched
	}
	edits, err := planEdits(snap, changes)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.onChange == nil {
		return nil, fmt.Errorf("write manifests in %q: the watcher is not running", w.dir)
	}
	for _, e := range edits {
		if err := w.prepareEdit(snap, e); err != nil {
			return nil, err
		}
	}
	var werr error
	for _, e := range edits {
		if werr = w.writeEdit(e); werr != nil {
			break
		}
		// Written whole by us: read it at once, without settling.
		w.state.hint(fileHint{name: e.name, complete: true})
	}
	set, _ := w.state.scan(time.Now())
	w.deliverLocked(set)
	return w.state.snapshot(set), werr
}

// withoutNoOps drops the saves of an object that would be written as it
// is already (kubectl label with the value it has, a patch that changes
// nothing): rewriting its document would cost a flash write and turn a
// person's text into the API's rendering for nothing.
func withoutNoOps(snap *Snapshot, changes []Change) []Change {
	out := make([]Change, 0, len(changes))
	for _, c := range changes {
		if c.Object != nil {
			if cur, ok := snap.Set.Object(c.Key); ok {
				a, errA := Render(cur)
				b, errB := Render(c.Object)
				if errA == nil && errB == nil && bytes.Equal(a, b) {
					continue
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// planEdits groups changes by file, the files that remove a Namespace
// last (a power cut between files then leaves the namespace declared).
func planEdits(snap *Snapshot, changes []Change) ([]*fileEdit, error) {
	byName := map[string]*fileEdit{}
	add := func(name string, c Change) {
		e := byName[name]
		if e == nil {
			e = &fileEdit{name: name}
			byName[name] = e
		}
		e.changes = append(e.changes, c)
		if c.Object == nil && c.Key.Kind == "Namespace" {
			e.last = true
		}
	}
	for _, c := range changes {
		files := snap.Set.Sources(c.Key)
		switch {
		case c.Object != nil && len(files) > 0:
			add(files[0], c)
		case c.Object != nil:
			add(FileName(c.Key), c)
		case len(files) == 0:
			return nil, fmt.Errorf("remove %s: %w", c.Key, ErrNotDefined)
		default:
			for _, f := range files {
				add(f, c)
			}
		}
	}
	edits := make([]*fileEdit, 0, len(byName))
	for _, e := range byName {
		edits = append(edits, e)
	}
	slices.SortFunc(edits, func(a, b *fileEdit) int {
		if a.last != b.last {
			if a.last {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.name, b.name)
	})
	return edits, nil
}

// prepareEdit reads the file, checks it against snap and computes its new
// content.
func (w *Watcher) prepareEdit(snap *Snapshot, e *fileEdit) error {
	conflict := func(reason string) error {
		return &ConflictError{File: e.name, Key: e.changes[0].Key, Reason: reason}
	}
	path := filepath.Join(w.dir, e.name)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	case err != nil:
		return fmt.Errorf("write manifest %s: %w", e.name, err)
	default:
		e.exists = true
	}
	e.before = data
	was, known := snap.files[e.name]
	switch {
	case !known && e.exists:
		return conflict("was created since the directory was read; read it again and retry")
	case known && !e.exists:
		return conflict("was removed since it was read; read the object again and retry")
	case known && was.broken:
		return conflict(reasonBroken)
	case known && !was.current:
		return conflict(reasonPending)
	case known && sha256.Sum256(data) != was.hash:
		return conflict(reasonChanged)
	}
	e.after, err = editFile(e.name, data, e.changes, w.opts)
	if errors.Is(err, ErrBroken) {
		return conflict(reasonBroken)
	}
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", e.name, err)
	}
	e.perm = 0o644
	for _, c := range e.changes {
		if c.Key.Kind == "Secret" {
			e.perm = 0o600 // a Secret's values are for root only
		}
	}
	if e.exists {
		if info, err := os.Stat(path); err == nil {
			e.perm = info.Mode().Perm()
		}
	}
	return nil
}

// writeEdit writes (or removes) one file, if it is still what was read.
func (w *Watcher) writeEdit(e *fileEdit) error {
	path := filepath.Join(w.dir, e.name)
	unchanged := func() error {
		now, err := os.ReadFile(path)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write manifest %s: %w", e.name, err)
		}
		if exists != e.exists || !bytes.Equal(now, e.before) {
			return &ConflictError{File: e.name, Key: e.changes[0].Key, Reason: reasonChanged}
		}
		return nil
	}
	if e.after == nil {
		if !e.exists {
			return nil
		}
		if err := unchanged(); err != nil {
			return err
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove manifest %s: %w", e.name, err)
		}
		return atomicfile.SyncDir(w.dir)
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return fmt.Errorf("write manifest %s: %w", e.name, err)
	}
	return atomicfile.WriteChecked(path, e.after, e.perm, unchanged)
}
