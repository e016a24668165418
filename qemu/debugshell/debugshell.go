// Package debugshell runs commands in a podboot board's debug shell
// (booted with podboot.debug=shell) from the host: it types them into
// QEMU's serial socket and reads their output from the console's log
// file. The end-to-end tests and the flash-wear bench drive boards this
// way.
package debugshell

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Shell is one board's debug shell. Commands run one at a time.
type Shell struct {
	// Socket is QEMU's serial chardev socket (server=on).
	Socket string
	// Console returns everything the console printed so far (QEMU's
	// chardev logfile).
	Console func() string
	// Exited, if set, returns a non-nil error once QEMU has exited, so a
	// command does not wait out its timeout on a dead board.
	Exited func() error

	mu   sync.Mutex
	conn net.Conn
	n    int
}

// Run types command and returns what it printed and its exit status. The
// command line ends with an echo of a unique marker, written so that the
// terminal's echo of the command line itself does not match it.
func (s *Shell) Run(command string, timeout time.Duration) (string, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		c, err := net.Dial("unix", s.Socket)
		if err != nil {
			return "", 0, fmt.Errorf("connect to the serial console %s: %w", s.Socket, err)
		}
		s.conn = c
		// QEMU also sends the console's output on the socket; drain it
		// (the console file has it all) so the guest never stalls.
		go func() { _, _ = io.Copy(io.Discard, c) }()
	}
	s.n++
	tag := fmt.Sprintf("%d%d", time.Now().UnixNano()%100000, s.n)
	start := len(s.Console())
	// The echo prints __done_<tag>:<status>; the command line as echoed by
	// the terminal shows __done''_<tag>, so only the output matches.
	if _, err := fmt.Fprintf(s.conn, "%s; echo __done''_%s:$?\r", command, tag); err != nil {
		return "", 0, fmt.Errorf("type %q on the serial console: %w", command, err)
	}
	re := regexp.MustCompile(`__done_` + tag + `:(\d+)`)
	deadline := time.Now().Add(timeout)
	for {
		text := s.Console()
		if start > len(text) {
			start = 0
		}
		text = text[start:]
		if m := re.FindStringSubmatchIndex(text); m != nil {
			status, _ := strconv.Atoi(text[m[2]:m[3]])
			return commandOutput(text[:m[0]], tag), status, nil
		}
		if s.Exited != nil {
			if err := s.Exited(); err != nil {
				return "", 0, fmt.Errorf("QEMU exited (%v) while running %q in the debug shell", err, command)
			}
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("debug shell: %q: no marker on the console within %s; console since:\n%s", command, timeout, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// commandOutput is the console text before the marker without the echoed
// command line and carriage returns.
func commandOutput(text, tag string) string {
	if i := strings.Index(text, "__done''_"+tag); i >= 0 {
		if nl := strings.IndexByte(text[i:], '\n'); nl >= 0 {
			text = text[i+nl+1:]
		}
	}
	return strings.ReplaceAll(text, "\r", "")
}

// Close closes the serial connection.
func (s *Shell) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
