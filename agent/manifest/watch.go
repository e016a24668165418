package manifest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Timing of the Watcher; fields of Watcher so that tests can shorten them.
const (
	defaultDebounce = 150 * time.Millisecond // coalesce a burst of events into one scan
	defaultQuick    = 10 * time.Millisecond  // coalesce a complete file's trailing events
	defaultSettle   = 500 * time.Millisecond // a file changed more recently may be half-written
	defaultRetry    = time.Second            // how often to look for a missing directory
)

// Watcher turns a manifest directory into a stream of Sets. See doc.go for
// the rules it adds on top of LoadDir (settling, last-good files).
type Watcher struct {
	dir    string
	opts   Options
	resync time.Duration
	log    *slog.Logger

	debounce time.Duration
	quick    time.Duration // debounce after a file was reported complete
	settle   time.Duration
	retry    time.Duration

	// ready is closed once Run has delivered its first Set: Refresh and
	// Apply wait for it.
	ready     chan struct{}
	readyOnce sync.Once

	// mu makes a scan and the delivery of its Set one step, whether Run,
	// Refresh or Apply takes it, so that a Set read before an API write is
	// never delivered after it.
	mu        sync.Mutex
	state     *dirState       // set by Run
	onChange  func(*Set)      // Run's; nil when Run is not running
	hints     <-chan fileHint // the close-write hints; nil without them
	delivered bool            // onChange was called
	lastHash  string          // of the last Set delivered
}

// NewWatcher watches dir. resync is the period of a full rescan that does
// not rely on inotify (0 or less disables it).
func NewWatcher(dir string, opts Options, resync time.Duration, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		dir: dir, opts: opts, resync: resync, log: log,
		debounce: defaultDebounce, quick: defaultQuick, settle: defaultSettle, retry: defaultRetry,
		ready: make(chan struct{}),
	}
}

// Run calls onChange once with the initial Set, then every time the Set
// differs from the last one passed (objects or error messages). onChange is
// called from Run's goroutine only, never after Run returns. Run returns nil
// when ctx is done, or an error if inotify cannot be used at all.
func (w *Watcher) Run(ctx context.Context, onChange func(*Set)) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch manifest directory %q: %w", w.dir, err)
	}
	defer fsw.Close()
	// Without close-write events every change settles: slower, still safe.
	cw, err := newCloseWatch()
	if err != nil {
		w.log.Warn("no close-write events; every manifest change waits to settle", "dir", w.dir, "err", err)
	} else {
		defer cw.close()
	}
	w.mu.Lock()
	w.state = newDirState(w.dir, w.opts, w.settle)
	w.onChange, w.delivered, w.lastHash = onChange, false, ""
	w.hints = nil
	if cw != nil {
		w.hints = cw.Hints()
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.onChange = nil // never called after Run returns
		w.mu.Unlock()
	}()
	l := newWatchLoop(w, fsw, cw)
	defer l.stopTimers()
	if w.resync > 0 {
		t := time.NewTicker(w.resync)
		defer t.Stop()
		l.resync = t.C
	}
	return l.run(ctx)
}

// watchLoop is one Run of a Watcher: its watches, timers and the last Set
// delivered. Only Run's goroutine uses it.
type watchLoop struct {
	w      *Watcher
	fsw    *fsnotify.Watcher
	cw     *closeWatch      // nil without close-write events
	hints  <-chan fileHint  // cw's hints; nil without them
	resync <-chan time.Time // nil without a resync period

	watching        bool // fsw (and cw) watch the directory
	reportedMissing bool // the directory's absence was logged

	debounce      *time.Timer // the next scan after events
	debounceArmed bool
	debounceAt    time.Time
	wake          *time.Timer // an unsettled file, or a look for the missing directory
}

func newWatchLoop(w *Watcher, fsw *fsnotify.Watcher, cw *closeWatch) *watchLoop {
	l := &watchLoop{
		w: w, fsw: fsw, cw: cw,
		debounce: time.NewTimer(time.Hour),
		wake:     time.NewTimer(time.Hour),
	}
	l.debounce.Stop()
	l.wake.Stop()
	if cw != nil {
		l.hints = cw.Hints()
	}
	return l
}

func (l *watchLoop) stopTimers() {
	l.debounce.Stop()
	l.wake.Stop()
}

// run scans once, then on every event, hint, timer or resync until ctx is
// done.
func (l *watchLoop) run(ctx context.Context) error {
	l.scan()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.fsw.Events:
			if !ok {
				return fmt.Errorf("watch manifest directory %q: event channel closed", l.w.dir)
			}
			l.event(ev)
		case h := <-l.hints:
			if l.takeHint(h) {
				l.arm(l.w.quick)
			}
		case err, ok := <-l.fsw.Errors:
			if !ok {
				return fmt.Errorf("watch manifest directory %q: error channel closed", l.w.dir)
			}
			// An overflowed queue loses events: rescan soon instead.
			l.w.log.Warn("manifest directory watch error; rescanning", "dir", l.w.dir, "err", err)
			l.arm(l.w.debounce)
		case <-l.debounce.C:
			l.debounceArmed = false
			l.scan()
		case <-l.wake.C:
			l.scan()
		case <-l.resync:
			l.scan()
		}
	}
}

// event schedules a scan for an inotify event on the directory or on a
// manifest file in it; a removed or renamed directory is watched again
// once it is back.
func (l *watchLoop) event(ev fsnotify.Event) {
	if filepath.Clean(ev.Name) == filepath.Clean(l.w.dir) {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			l.watching = false
			_ = l.fsw.Remove(l.w.dir) // the kernel may have dropped it already
		}
	} else if !IsManifestFile(filepath.Base(ev.Name)) {
		return // editor temp files, hidden files: no rescan
	}
	l.arm(l.w.debounce)
}

// arm schedules a scan after d, or sooner if one is already due sooner.
func (l *watchLoop) arm(d time.Duration) {
	at := time.Now().Add(d)
	if l.debounceArmed && !at.Before(l.debounceAt) {
		return
	}
	l.debounceArmed, l.debounceAt = true, at
	l.debounce.Reset(d)
}

// takeHint records a close-write hint and reports whether it says a
// manifest file is complete.
func (l *watchLoop) takeHint(h fileHint) (complete bool) {
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	return l.w.takeHintLocked(h)
}

func (w *Watcher) takeHintLocked(h fileHint) (complete bool) {
	switch {
	case h.name == "":
		w.state.forgetComplete()
	case IsManifestFile(h.name):
		w.state.hint(h)
		return h.complete
	}
	return false
}

// takeHintsLocked takes the hints already read, so that a write that
// began after a close is known before the file is read.
func (w *Watcher) takeHintsLocked() {
	for {
		select {
		case h := <-w.hints:
			w.takeHintLocked(h)
		default:
			return
		}
	}
}

// deliverLocked passes set to onChange unless it is the Set last passed.
func (w *Watcher) deliverLocked(set *Set) {
	if h := set.Hash(); !w.delivered || h != w.lastHash {
		w.delivered, w.lastHash = true, h
		w.onChange(set)
	}
	w.readyOnce.Do(func() { close(w.ready) })
}

// scan watches the directory if it is not watched yet, reads it, sets the
// wake timer for what has not settled, and delivers the Set if it changed.
func (l *watchLoop) scan() {
	if !l.watching {
		l.watch()
	}
	w := l.w
	w.mu.Lock()
	w.takeHintsLocked()
	set, next := w.state.scan(time.Now())
	w.deliverLocked(set)
	w.mu.Unlock()
	if !l.watching && (next == 0 || w.retry < next) {
		next = w.retry
	}
	if next > 0 {
		l.wake.Reset(next)
	}
}

// watch adds the directory to the watches; a missing one is logged once,
// and its return too.
func (l *watchLoop) watch() {
	w := l.w
	if err := l.fsw.Add(w.dir); err != nil {
		if !l.reportedMissing {
			w.log.Warn("manifest directory not watchable; retrying", "dir", w.dir, "err", err)
			l.reportedMissing = true
		}
		return
	}
	l.watching = true
	if l.cw != nil {
		if err := l.cw.add(w.dir); err != nil {
			w.log.Warn("no close-write events; every manifest change waits to settle", "dir", w.dir, "err", err)
		}
	}
	if l.reportedMissing {
		w.log.Info("manifest directory is back", "dir", w.dir)
	}
	l.reportedMissing = false
}

// dirState is what the Watcher remembers about each file between scans.
type dirState struct {
	dir    string
	opts   Options
	settle time.Duration
	files  map[string]*fileState
	// complete holds the files the kernel last reported closed after
	// writing or renamed into place, with no write since: their content is
	// read without settling.
	complete map[string]bool
}

type fileState struct {
	hash    [sha256.Size]byte
	modTime time.Time
	seenAt  time.Time   // when this content was first read
	result  *fileResult // what the file contributes now; nil until it settles
	good    *fileResult // the last result that decoded as a whole
	current bool        // result reflects the content with hash
}

func newDirState(dir string, opts Options, settle time.Duration) *dirState {
	return &dirState{dir: dir, opts: opts, settle: settle, files: map[string]*fileState{}, complete: map[string]bool{}}
}

// hint records whether a file is complete or being written.
func (d *dirState) hint(h fileHint) {
	if h.complete {
		d.complete[h.name] = true
	} else {
		delete(d.complete, h.name)
	}
}

// forgetComplete drops every completeness hint (events were lost).
func (d *dirState) forgetComplete() { clear(d.complete) }

// scan reads the directory and returns the Set, plus how long to wait for
// a file that has not settled yet (0 if none).
func (d *dirState) scan(now time.Time) (*Set, time.Duration) {
	names, err := manifestFiles(d.dir)
	if err != nil {
		clear(d.files)
		return &Set{Errors: []*DocumentError{{File: d.dir, Index: -1, Err: err}}}, 0
	}
	var next time.Duration
	present := map[string]bool{}
	var results []*fileResult
	for _, name := range names {
		present[name] = true
		wait, r := d.scanFile(name, now)
		if wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
		if r != nil {
			results = append(results, r)
		}
	}
	for name := range d.files {
		if !present[name] {
			delete(d.files, name) // removed: its objects go too
		}
	}
	return merge(results), next
}

// scanFile returns the file's contribution, or how long until its new
// content is old enough to be trusted.
func (d *dirState) scanFile(name string, now time.Time) (time.Duration, *fileResult) {
	path := filepath.Join(d.dir, name)
	st := d.files[name]
	complete := d.complete[name]
	delete(d.complete, name) // one read per hint: later changes need their own
	info, err := os.Stat(path)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		delete(d.files, name) // gone between listing and reading
		return 0, nil
	}
	if err != nil {
		if st == nil {
			st = &fileState{}
			d.files[name] = st
		}
		st.current = false
		return 0, d.keepGood(name, st, unreadable(name, err))
	}

	h := sha256.Sum256(data)
	if st == nil {
		st = &fileState{}
		d.files[name] = st
	}
	if !st.current || st.hash != h {
		if st.hash != h || st.seenAt.IsZero() {
			st.seenAt = now
		}
		st.hash, st.modTime, st.current = h, info.ModTime(), false
	}
	if st.current {
		return 0, st.result
	}
	// Trust the content once either the file's mtime or our own first
	// sight of it is settle old (the latter copes with clocks that jump,
	// as on boards that boot in 1970).
	age := max(now.Sub(st.modTime), now.Sub(st.seenAt))
	if !complete && age < d.settle {
		return d.settle - age, st.result
	}
	st.current = true
	st.result = d.keepGood(name, st, decodeFile(name, data, d.opts))
	return 0, st.result
}

// keepGood applies the last-good rule: a file that no longer decodes as a
// whole keeps contributing the objects of its last good content, with the
// new errors reported, so that a half-written file never stops pods.
func (d *dirState) keepGood(name string, st *fileState, r *fileResult) *fileResult {
	if !r.broken {
		st.good = r
		return r
	}
	if st.good == nil {
		return r
	}
	kept := &fileResult{objects: st.good.objects, errors: r.errors, broken: true}
	if len(r.errors) == 0 {
		kept.errors = []*DocumentError{{File: name, Index: -1,
			Err: errors.New("file is empty; keeping the objects it last held (delete the file to remove them)")}}
	}
	return kept
}
