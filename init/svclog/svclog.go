// Package svclog is where a service's output goes: the console, with each
// line prefixed by the service's name so interleaved output stays
// readable, and a bounded file (the current file up to a size cap, plus
// one previous file), so a chatty service cannot fill the board's memory:
// /run is a tmpfs.
package svclog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// File is a size-capped log file: when a write would take it past Max
// bytes, it is renamed to Path+".1" (replacing the older one) and a new
// file is started. At most about 2*Max bytes are kept.
type File struct {
	Path string
	Max  int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Write appends p, rotating first when needed. A write error is reported
// once and the data dropped: a full disk must not stop the service.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && l.size+int64(len(p)) > l.Max {
		l.f.Close()
		l.f = nil
		_ = os.Rename(l.Path, l.Path+".1")
	}
	if l.f == nil {
		f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return 0, fmt.Errorf("open log %s: %w", l.Path, err)
		}
		l.f, l.size = f, 0
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// Close closes the current file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Prefixer writes whole lines to W, each starting with Prefix; a partial
// line waits for its end (or for Flush).
type Prefixer struct {
	W      io.Writer
	Prefix string

	mu  sync.Mutex
	buf []byte
}

// maxLine bounds a line without a newline (a progress bar): it is written
// out when it gets this long.
const maxLine = 4096

func (p *Prefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			if len(p.buf) < maxLine {
				break
			}
			i = len(p.buf) - 1
		}
		line := make([]byte, 0, len(p.Prefix)+i+2)
		line = append(append(line, p.Prefix...), p.buf[:i+1]...)
		if line[len(line)-1] != '\n' {
			line = append(line, '\n')
		}
		p.buf = p.buf[i+1:]
		// The console may be gone or slow; the service must not see an
		// error for it.
		_, _ = p.W.Write(line)
	}
	return len(b), nil
}
