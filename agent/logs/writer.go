package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const (
	// MaxLineSize is the longest text one CRI line carries; longer lines are
	// cut into P chunks of this size. It is containerd's default
	// (max_container_log_line_size = 16384).
	MaxLineSize = 16 * 1024

	// Stdout and Stderr are the stream names of the CRI format.
	Stdout = "stdout"
	Stderr = "stderr"

	tagPartial = "P"
	tagFull    = "F"
)

// Config bounds the containers' logs. Zero values mean the defaults.
type Config struct {
	// MaxSize is the size in bytes at which the current file is rotated
	// (kubelet's containerLogMaxSize).
	MaxSize int64
	// MaxFiles is how many files are kept: the current one and
	// MaxFiles-1 rotated ones (kubelet's containerLogMaxFiles).
	MaxFiles int
	// MaxTotal is what a Budget holds all the logs under its root to.
	MaxTotal int64
}

// DefaultConfig returns 1 MiB per file, 2 files (the current one and one
// rotated) and 64 MiB in all. kubelet's defaults are 10 MiB and 5 files,
// but on a board the state directory is tmpfs, so every byte of log is
// RAM: a dozen containers at kubelet's defaults could pin 600 MiB, at
// these 24 MiB (docs/runtime.md, "Container logs", has the arithmetic).
func DefaultConfig() Config {
	return Config{MaxSize: 1 << 20, MaxFiles: 2, MaxTotal: 64 << 20}
}

// Or fills the zero fields of c from d: flags given on the command line
// (c) over device.yaml's logs section (d).
func (c Config) Or(d Config) Config {
	if c.MaxSize == 0 {
		c.MaxSize = d.MaxSize
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = d.MaxFiles
	}
	if c.MaxTotal == 0 {
		c.MaxTotal = d.MaxTotal
	}
	return c
}

func (c Config) withDefaults() (Config, error) {
	if c.MaxSize < 0 {
		return c, fmt.Errorf("log max size %d is negative", c.MaxSize)
	}
	if c.MaxFiles < 0 {
		return c, fmt.Errorf("log max files %d is negative", c.MaxFiles)
	}
	if c.MaxTotal < 0 {
		return c, fmt.Errorf("log max total %d is negative", c.MaxTotal)
	}
	d := DefaultConfig()
	if c.MaxSize == 0 {
		c.MaxSize = d.MaxSize
	}
	if c.MaxFiles == 0 {
		c.MaxFiles = d.MaxFiles
	}
	if c.MaxTotal == 0 {
		c.MaxTotal = d.MaxTotal
	}
	return c, nil
}

// Writer is one container instance's log file. Its two streams may be
// written from different goroutines.
type Writer struct {
	path    string
	cfg     Config
	now     func() time.Time
	maxLine int

	// budget, when set, knows the file is open and is enforced after
	// each rotation.
	budget *Budget

	mu     sync.Mutex // guards f, size, closed
	f      *os.File
	size   int64
	closed bool

	stdout, stderr *stream
}

// NewWriter opens path for appending, creating it and its parent
// directories.
func NewWriter(path string, cfg Config) (*Writer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory for %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %q: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log %q: %w", path, err)
	}
	w := &Writer{path: path, cfg: cfg, now: time.Now, maxLine: MaxLineSize, f: f, size: st.Size()}
	w.stdout = &stream{w: w, name: Stdout}
	w.stderr = &stream{w: w, name: Stderr}
	return w, nil
}

// Stream returns the writer of one stream, "stdout" or "stderr". Each
// complete line written to it becomes one CRI line; an unterminated line is
// held until its end arrives or the Writer closes. For any other name it
// returns a writer that fails.
func (w *Writer) Stream(name string) io.Writer {
	switch name {
	case Stdout:
		return w.stdout
	case Stderr:
		return w.stderr
	}
	return errWriter{fmt.Errorf("log %q: unknown stream %q (want stdout or stderr)", w.path, name)}
}

// Close writes what is left of an unterminated line of either stream as P
// lines, as containerd does at the end of a container's output, and closes
// the file. Later writes fail.
func (w *Writer) Close() error {
	errOut := w.stdout.flush()
	errErr := w.stderr.flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.Join(errOut, errErr)
	}
	w.closed = true
	var errClose error
	if err := w.f.Close(); err != nil {
		errClose = fmt.Errorf("close log %q: %w", w.path, err)
	}
	if w.budget != nil {
		w.budget.closed(w.path)
	}
	return errors.Join(errOut, errErr, errClose)
}

// appendRecords writes buf, a run of whole CRI lines ending at the offsets
// ends, rotating the file between lines when the next one would take it
// past MaxSize. After a rotation it has the budget enforced, outside the
// writer's lock: a rotation is when the logs grow by a whole file.
func (w *Writer) appendRecords(buf []byte, ends []int) error {
	rotated, err := w.appendLocked(buf, ends)
	if rotated && w.budget != nil {
		w.budget.rotated()
	}
	return err
}

func (w *Writer) appendLocked(buf []byte, ends []int) (rotated bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, fmt.Errorf("write log %q: %w", w.path, os.ErrClosed)
	}
	start, prev := 0, 0
	for _, end := range ends {
		pending := int64(prev - start)
		if w.size+pending > 0 && w.size+pending+int64(end-prev) > w.cfg.MaxSize {
			if err := w.write(buf[start:prev]); err != nil {
				return rotated, err
			}
			rotated = true
			if err := w.rotate(); err != nil {
				return rotated, err
			}
			start = prev
		}
		prev = end
	}
	return rotated, w.write(buf[start:prev])
}

func (w *Writer) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log %q: %w", w.path, err)
	}
	return nil
}

// rotate shifts path.N-1 … path.1 up by one (dropping the oldest), renames
// path to path.1 and starts a new, empty path. Readers that follow the log
// notice the new file by its inode.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log %q for rotation: %w", w.path, err)
	}
	err := w.shiftFiles()
	f, openErr := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if openErr != nil {
		// Keep the writer usable for Close; later writes fail on it.
		w.f, _ = os.Open(os.DevNull)
		return errors.Join(err, fmt.Errorf("reopen log %q after rotation: %w", w.path, openErr))
	}
	w.f, w.size = f, 0
	return err
}

func (w *Writer) shiftFiles() error {
	rotated := w.cfg.MaxFiles - 1
	if rotated <= 0 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %q: %w", w.path, err)
		}
		return nil
	}
	oldest := rotatedName(w.path, rotated)
	if err := os.Remove(oldest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log %q: remove %q: %w", w.path, oldest, err)
	}
	for i := rotated - 1; i >= 1; i-- {
		from, to := rotatedName(w.path, i), rotatedName(w.path, i+1)
		if err := os.Rename(from, to); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %q: rename %q: %w", w.path, from, err)
		}
	}
	if err := os.Rename(w.path, rotatedName(w.path, 1)); err != nil {
		return fmt.Errorf("rotate log %q: %w", w.path, err)
	}
	return nil
}

func rotatedName(path string, i int) string {
	return path + "." + strconv.Itoa(i)
}

// stream cuts one stream's bytes into CRI lines.
type stream struct {
	w    *Writer
	name string

	mu      sync.Mutex // guards the fields below
	pending []byte     // the start of an unterminated line, at most maxLine+1 bytes
	out     []byte     // encoded lines of the current Write
	ends    []int
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	ts := s.w.now()
	s.out, s.ends = s.out[:0], s.ends[:0]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.pending = append(s.pending, p...)
			s.cutLong(ts)
			break
		}
		var line []byte
		if len(s.pending) == 0 {
			line = p[:i]
		} else {
			s.pending = append(s.pending, p[:i]...)
			line = s.pending
		}
		// containerd drops the \r of a \r\n line ending.
		line = bytes.TrimSuffix(line, []byte{'\r'})
		for len(line) > s.w.maxLine {
			s.encode(ts, tagPartial, line[:s.w.maxLine])
			line = line[s.w.maxLine:]
		}
		s.encode(ts, tagFull, line)
		s.pending = s.pending[:0]
		p = p[i+1:]
	}
	if len(s.ends) == 0 {
		return n, nil
	}
	// The bytes are consumed even when the file write fails: the caller
	// should keep draining the container's output.
	return n, s.w.appendRecords(s.out, s.ends)
}

// cutLong writes full-size P chunks of an unterminated line as soon as a
// byte past the limit arrives, as containerd does, except when that byte is
// a \r that may be the start of a \r\n ending.
func (s *stream) cutLong(ts time.Time) {
	max := s.w.maxLine
	n := 0
	for len(s.pending)-n > max && !(len(s.pending)-n == max+1 && s.pending[len(s.pending)-1] == '\r') {
		s.encode(ts, tagPartial, s.pending[n:n+max])
		n += max
	}
	if n > 0 {
		s.pending = append(s.pending[:0], s.pending[n:]...)
	}
}

// flush writes an unterminated line as P chunks.
func (s *stream) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	ts := s.w.now()
	s.out, s.ends = s.out[:0], s.ends[:0]
	line := s.pending
	for len(line) > 0 {
		n := min(len(line), s.w.maxLine)
		s.encode(ts, tagPartial, line[:n])
		line = line[n:]
	}
	s.pending = s.pending[:0]
	return s.w.appendRecords(s.out, s.ends)
}

func (s *stream) encode(ts time.Time, tag string, text []byte) {
	s.out = ts.UTC().AppendFormat(s.out, time.RFC3339Nano)
	s.out = append(s.out, ' ')
	s.out = append(s.out, s.name...)
	s.out = append(s.out, ' ')
	s.out = append(s.out, tag...)
	s.out = append(s.out, ' ')
	s.out = append(s.out, text...)
	s.out = append(s.out, '\n')
	s.ends = append(s.ends, len(s.out))
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }
