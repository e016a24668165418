package flashwear

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// shell types commands into the board's debug shell (podboot.debug=shell)
// through QEMU's serial socket and reads their output from the console
// file, as qemu/e2e's Board.Shell does: each command line ends with an
// echo of a unique marker, written so that the echoed command line does
// not match it.
type shell struct {
	socket, console string
	conn            net.Conn
	n               int
}

func (s *shell) run(command string, timeout time.Duration) (string, error) {
	if s.conn == nil {
		c, err := net.Dial("unix", s.socket)
		if err != nil {
			return "", fmt.Errorf("connect to the serial console %s: %w", s.socket, err)
		}
		s.conn = c
		// QEMU also sends the console's output on the socket; drain it
		// (the console file has it all) so the guest never stalls.
		go func() { _, _ = bufio.NewReader(c).WriteTo(discard{}) }()
	}
	s.n++
	tag := fmt.Sprintf("%d%d", time.Now().UnixNano()%100000, s.n)
	start := len(s.text())
	if _, err := fmt.Fprintf(s.conn, "%s; echo __done''_%s:$?\r", command, tag); err != nil {
		return "", fmt.Errorf("type %q on the serial console: %w", command, err)
	}
	re := regexp.MustCompile(`__done_` + tag + `:(\d+)`)
	deadline := time.Now().Add(timeout)
	for {
		text := s.text()
		if start > len(text) {
			start = 0
		}
		text = text[start:]
		if m := re.FindStringSubmatchIndex(text); m != nil {
			status, _ := strconv.Atoi(text[m[2]:m[3]])
			out := text[:m[0]]
			if i := strings.Index(out, "__done''_"+tag); i >= 0 {
				if nl := strings.IndexByte(out[i:], '\n'); nl >= 0 {
					out = out[i+nl+1:]
				}
			}
			out = strings.ReplaceAll(out, "\r", "")
			if status != 0 {
				return out, fmt.Errorf("debug shell: %q exited %d: %s", command, status, out)
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("debug shell: %q: no marker on the console within %s", command, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *shell) text() string {
	data, _ := os.ReadFile(s.console)
	return string(data)
}

func (s *shell) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
