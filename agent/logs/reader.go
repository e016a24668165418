package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReadOptions are the options of `kubectl logs` that act on the file
// (kubelet's LogOptions).
type ReadOptions struct {
	// Follow keeps reading what is appended, across rotations, until the
	// context ends.
	Follow bool
	// TailLines is how many logical lines to print from the end; < 0
	// prints all.
	TailLines int64
	// Timestamps prefixes each line with its time in RFC3339Nano (fixed
	// width, as kubelet prints it) and a space.
	Timestamps bool
	// SinceTime skips lines written before it (after the tail is taken,
	// as kubelet does); zero skips none.
	SinceTime time.Time
	// LimitBytes stops after this many bytes of output, cutting the last
	// line; 0 means no limit.
	LimitBytes int64
}

// followPoll is how often a follower looks at the file even without an
// inotify event (kubelet's logForceCheckPeriod).
const followPoll = time.Second

// errLimit ends a read that reached LimitBytes; Read returns nil for it.
var errLimit = errors.New("log byte limit reached")

// Read writes the log at path to out: the rotated files oldest first, then
// path itself. A line that cannot be decoded is skipped. With Follow it
// returns nil when ctx ends.
func Read(ctx context.Context, path string, opts ReadOptions, out io.Writer) error {
	return read(ctx, path, opts, out, nil)
}

// read is Read; following, if not nil, is called when the existing lines
// are written and Follow starts (tests wait for it).
func read(ctx context.Context, path string, opts ReadOptions, out io.Writer, following func()) error {
	files, err := openLogFiles(path)
	if err != nil {
		return err
	}
	cur := newLineReader(files[len(files)-1])
	defer func() {
		for _, f := range files[:len(files)-1] {
			f.Close()
		}
		cur.f.Close()
	}()

	o := &output{w: out, opts: opts, remain: opts.LimitBytes}
	emit := o.write
	var ring *tailRing
	if opts.TailLines >= 0 {
		ring = &tailRing{max: opts.TailLines}
		emit = ring.add
	}
	dec := &decoder{}
	for _, f := range files[:len(files)-1] {
		lr := newLineReader(f)
		if err := lr.readAll(dec, emit, true); err != nil {
			return ignoreLimit(err)
		}
	}
	if err := cur.readAll(dec, emit, !opts.Follow); err != nil {
		return ignoreLimit(err)
	}
	if !opts.Follow {
		if err := dec.flush(emit); err != nil {
			return ignoreLimit(err)
		}
	}
	if ring != nil {
		for _, e := range ring.entries() {
			if err := o.write(e); err != nil {
				return ignoreLimit(err)
			}
		}
	}
	if !opts.Follow {
		return nil
	}
	if following != nil {
		following()
	}
	return ignoreLimit(follow(ctx, path, cur, dec, o.write))
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// follow reads what is appended to path, switching to the new file when
// the writer rotates it, until ctx ends.
func follow(ctx context.Context, path string, cur *lineReader, dec *decoder, emit func(entry) error) error {
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	// inotify only makes the follower prompt; the poll below is enough
	// without it.
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		if w.Add(filepath.Dir(path)) == nil {
			events, watchErrs = w.Events, w.Errors
		}
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		if err := cur.readAll(dec, emit, false); err != nil {
			return err
		}
		next, err := reopenIfRotated(path, cur.f)
		if err != nil {
			return err
		}
		if next != nil {
			// The writer closed the old file before renaming it: what it
			// holds now is all it will ever hold.
			if err := cur.readAll(dec, emit, true); err != nil {
				next.Close()
				return err
			}
			cur.f.Close()
			*cur = *newLineReader(next)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
			}
		case _, ok := <-watchErrs:
			if !ok {
				watchErrs = nil
			}
		case <-tick.C:
		}
	}
}

// reopenIfRotated opens path if it is no longer the file f.
func reopenIfRotated(path string, f *os.File) (*os.File, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // between the rename and the new file
	}
	if err != nil {
		return nil, fmt.Errorf("stat log %q: %w", path, err)
	}
	cst, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat log %q: %w", path, err)
	}
	if os.SameFile(st, cst) {
		return nil, nil
	}
	next, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", path, err)
	}
	return next, nil
}

// openLogFiles opens path and its rotated files, oldest first. The current
// file is opened first and the rotated ones newest first, so that a
// rotation in between shows up as the same file twice (skipped) and never
// as a gap.
func openLogFiles(path string) ([]*os.File, error) {
	cur, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", path, err)
	}
	files := []*os.File{cur}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	nums, err := rotatedNumbers(path)
	if err != nil {
		closeAll()
		return nil, err
	}
	var infos []os.FileInfo
	if st, err := cur.Stat(); err == nil {
		infos = append(infos, st)
	}
	for _, n := range nums {
		name := rotatedName(path, n)
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("open rotated log %q: %w", name, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			closeAll()
			return nil, fmt.Errorf("stat rotated log %q: %w", name, err)
		}
		if slices.ContainsFunc(infos, func(o os.FileInfo) bool { return os.SameFile(o, st) }) {
			f.Close()
			continue
		}
		infos = append(infos, st)
		files = append(files, f)
	}
	slices.Reverse(files)
	return files, nil
}

// rotatedNumbers lists the N of path.N that exist, ascending.
func rotatedNumbers(path string) ([]int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rotated logs of %q: %w", path, err)
	}
	var nums []int
	for _, de := range des {
		suffix, ok := strings.CutPrefix(de.Name(), base+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums, nil
}

// maxPhysicalLine bounds one line of a file; a longer one cannot have come
// from a Writer and is skipped as corrupt.
const maxPhysicalLine = 1 << 20

// lineReader splits a file into lines, keeping an unterminated end for
// the next read.
type lineReader struct {
	f        *os.File
	buf      []byte
	carry    []byte
	skipping bool // inside an overlong line
}

func newLineReader(f *os.File) *lineReader {
	return &lineReader{f: f, buf: make([]byte, 32<<10)}
}

// readAll reads to the end of the file and feeds each line to dec. With
// final, an unterminated last line is fed too (kubelet prints it);
// otherwise it waits for its end.
func (r *lineReader) readAll(dec *decoder, emit func(entry) error, final bool) error {
	for {
		n, err := r.f.Read(r.buf)
		if n > 0 {
			if err := r.split(r.buf[:n], dec, emit); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read log %q: %w", r.f.Name(), err)
		}
	}
	if final && len(r.carry) > 0 {
		line := r.carry
		r.carry = nil
		return dec.feed(line, false, emit)
	}
	return nil
}

func (r *lineReader) split(data []byte, dec *decoder, emit func(entry) error) error {
	for len(data) > 0 {
		i := slices.Index(data, '\n')
		if i < 0 {
			if !r.skipping {
				r.carry = append(r.carry, data...)
				if len(r.carry) > maxPhysicalLine {
					r.carry, r.skipping = r.carry[:0], true
				}
			}
			return nil
		}
		line := data[:i]
		data = data[i+1:]
		if r.skipping {
			r.skipping = false
			continue
		}
		if len(r.carry) > 0 {
			r.carry = append(r.carry, line...)
			line = r.carry
		}
		err := dec.feed(line, true, emit)
		r.carry = r.carry[:0]
		if err != nil {
			return err
		}
	}
	return nil
}

// output applies since, timestamps and the byte limit.
type output struct {
	w      io.Writer
	opts   ReadOptions
	remain int64
	buf    []byte
}

func (o *output) write(e entry) error {
	if !o.opts.SinceTime.IsZero() && e.ts.Before(o.opts.SinceTime) {
		return nil
	}
	o.buf = o.buf[:0]
	if o.opts.Timestamps {
		o.buf = e.ts.AppendFormat(o.buf, timeFormatOut)
		o.buf = append(o.buf, ' ')
	}
	o.buf = append(o.buf, e.text...)
	if e.newline {
		o.buf = append(o.buf, '\n')
	}
	line := o.buf
	limited := o.opts.LimitBytes > 0
	if limited && int64(len(line)) > o.remain {
		line = line[:o.remain]
	}
	n, err := o.w.Write(line)
	o.remain -= int64(n)
	if err != nil {
		return fmt.Errorf("write log output: %w", err)
	}
	if n < len(line) {
		return fmt.Errorf("write log output: %w", io.ErrShortWrite)
	}
	if limited && o.remain <= 0 {
		return errLimit
	}
	return nil
}

// tailRing keeps the last max entries.
type tailRing struct {
	max   int64
	buf   []entry
	start int
}

func (t *tailRing) add(e entry) error {
	if t.max == 0 {
		return nil
	}
	if int64(len(t.buf)) < t.max {
		t.buf = append(t.buf, e)
		return nil
	}
	t.buf[t.start] = e
	t.start = (t.start + 1) % len(t.buf)
	return nil
}

func (t *tailRing) entries() []entry {
	return append(slices.Clone(t.buf[t.start:]), t.buf[:t.start]...)
}
