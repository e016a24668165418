package debugshell

import (
	"bufio"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeConsole stands in for QEMU: a serial socket whose every line is
// echoed to the console log, as a terminal does, and answered by a tiny
// "shell" that runs echo.
type fakeConsole struct {
	mu   sync.Mutex
	text strings.Builder
}

func (c *fakeConsole) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.text.String()
}

func (c *fakeConsole) print(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text.WriteString(s)
}

var doneRE = regexp.MustCompile(`^(.*); echo __done''_(\w+):\$\?$`)

func serve(t *testing.T, ln net.Listener, console *fakeConsole, status string) {
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\r')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r")
		console.print(line + "\r\n") // the terminal's echo
		m := doneRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("typed line %q has no marker", line)
			return
		}
		console.print("[svc] a log line\r\n" + strings.TrimPrefix(m[1], "echo ") + "\r\n")
		console.print("__done_" + m[2] + ":" + status + "\r\n")
	}
}

func TestRun(t *testing.T) {
	for _, status := range []string{"0", "3"} {
		sock := filepath.Join(t.TempDir(), "serial.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		console := &fakeConsole{}
		console.print("boot log\r\n")
		go serve(t, ln, console, status)
		s := &Shell{Socket: sock, Console: console.String}
		for _, word := range []string{"hello", "again"} {
			out, st, err := s.Run("echo "+word, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := "[svc] a log line\n" + word + "\n"; out != want {
				t.Errorf("output = %q, want %q", out, want)
			}
			if st != int(status[0]-'0') {
				t.Errorf("status = %d, want %s", st, status)
			}
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestRunExitedAndTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "serial.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	console := func() string { return "" }
	s := &Shell{Socket: sock, Console: console, Exited: func() error { return errors.New("exit status 1") }}
	if _, _, err := s.Run("true", time.Minute); err == nil || !strings.Contains(err.Error(), "QEMU exited (exit status 1)") {
		t.Errorf("err = %v, want QEMU exited", err)
	}
	s = &Shell{Socket: sock, Console: console}
	defer s.Close()
	if _, _, err := s.Run("true", 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no marker on the console within") {
		t.Errorf("err = %v, want a timeout", err)
	}
}

func TestRunNoSocket(t *testing.T) {
	s := &Shell{Socket: filepath.Join(t.TempDir(), "none.sock"), Console: func() string { return "" }}
	if _, _, err := s.Run("true", time.Second); err == nil || !strings.Contains(err.Error(), "connect to the serial console") {
		t.Errorf("err = %v, want a connect error", err)
	}
}
