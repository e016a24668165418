//go:build linux

package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// closeWatch is a second inotify instance on the manifest directory that
// tells which files are complete. fsnotify v1.10.1 keeps IN_CLOSE_WRITE
// unexported (xUnportableCloseWrite, withOps) and folds IN_MOVED_TO into
// Create together with IN_CREATE, so it cannot tell "renamed into place"
// from "just created, empty". One inotify queue keeps the order of a file's
// modifications and closes, which is what the trust decision relies on.
type closeWatch struct {
	file  *os.File
	fd    int
	hints chan fileHint
	done  chan struct{}
}

const closeWatchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_MODIFY

func newCloseWatch() (*closeWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	c := &closeWatch{
		// Non-blocking, so that the runtime poller serves Read and Close
		// interrupts it.
		file:  os.NewFile(uintptr(fd), "inotify"),
		fd:    fd,
		hints: make(chan fileHint, 64),
		done:  make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// add watches dir; adding it again (a recreated directory) is harmless.
func (c *closeWatch) add(dir string) error {
	if _, err := unix.InotifyAddWatch(c.fd, dir, closeWatchMask); err != nil {
		return fmt.Errorf("inotify_add_watch %q: %w", dir, err)
	}
	return nil
}

func (c *closeWatch) Hints() <-chan fileHint { return c.hints }

func (c *closeWatch) close() {
	close(c.done)
	_ = c.file.Close()
}

func (c *closeWatch) read() {
	var buf [64 * (unix.SizeofInotifyEvent + unix.NAME_MAX + 1)]byte
	for {
		n, err := c.file.Read(buf[:])
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				c.send(fileHint{}) // unknown state: forget every trust
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameStart := off + unix.SizeofInotifyEvent
			nameEnd := min(nameStart+int(ev.Len), n)
			name := string(bytes.TrimRight(buf[nameStart:nameEnd], "\x00"))
			off = nameEnd
			if !c.send(hintFor(name, ev.Mask)) {
				return
			}
		}
	}
}

// hintFor maps one inotify event to what it says about the file. An
// overflowed queue may have lost a modification: forget every trust.
func hintFor(name string, mask uint32) fileHint {
	switch {
	case mask&unix.IN_Q_OVERFLOW != 0:
		return fileHint{}
	case mask&(unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO) != 0:
		return fileHint{name: name, complete: true}
	default:
		return fileHint{name: name}
	}
}

func (c *closeWatch) send(h fileHint) bool {
	select {
	case c.hints <- h:
		return true
	case <-c.done:
		return false
	}
}
