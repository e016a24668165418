package supervise

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func shService(name, script string) Service {
	return Service{Name: name, Command: func() *exec.Cmd { return exec.Command("/bin/sh", "-c", script) }}
}

// waitFile waits until a child process wrote path.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return true
	}
	// A zombie still answers kill(0); it has stopped running all the same.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z")
}

// Stop reaches every process of the service's group, and Output and Env
// reach the service.
func TestExecStopProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	logs, log := newRecorded()
	sup := New(log)
	var out lockedBuffer
	svc := shService("group", `echo "hello $GREETING"; sleep 1000 & echo $! > `+pidFile+`; wait`)
	svc.Env = []string{"GREETING=world"}
	svc.Output = &out
	if err := sup.Start(svc); err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(waitFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	started := logs.waitLog(t, "service started", map[string]string{"service": "group"})
	leader, _ := strconv.Atoi(started.attrs["pid"])
	if !sup.Owns(leader) {
		t.Errorf("Owns(%d) = false for the running service", leader)
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "hello world\n" {
		t.Errorf("output %q, want %q", got, "hello world\n")
	}
	logs.waitLog(t, "service exited", map[string]string{"service": "group", "status": "signal: terminated"})
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(child) {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d of the service survived Stop", child)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if sup.Owns(leader) {
		t.Errorf("Owns(%d) = true after the service stopped", leader)
	}
}

func TestExecKillAfterTimeout(t *testing.T) {
	logs, log := newRecorded()
	sup := New(log)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	svc := shService("stubborn", `trap "" TERM; echo ok > `+ready+`; exec sleep 1000`)
	svc.StopTimeout = 200 * time.Millisecond
	if err := sup.Start(svc); err != nil {
		t.Fatal(err)
	}
	waitFile(t, ready)
	start := time.Now()
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < svc.StopTimeout {
		t.Errorf("Stop took %v, less than the stop timeout %v", took, svc.StopTimeout)
	}
	logs.waitLog(t, "service did not stop in time: killing", map[string]string{"service": "stubborn"})
	logs.waitLog(t, "service exited", map[string]string{"service": "stubborn", "status": "signal: killed"})
}

func TestExecRestartAndNoRestart(t *testing.T) {
	logs, log := newRecorded()
	sup := New(log)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	if err := sup.Start(shService("crashy", `echo run >> `+runs+`; exit 3`)); err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(shService("done", `exit 125`)); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, "service exited", map[string]string{"service": "crashy", "status": "exit status 3"})
	logs.waitLog(t, "service restarting", map[string]string{"service": "crashy", "in": "1s"})
	logs.waitLog(t, "service started", map[string]string{"service": "crashy", "attempt": "2"})
	logs.waitLog(t, "service exited with code 125: not restarting", map[string]string{"service": "done"})
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(logs.find("service started", map[string]string{"service": "done"})); n != 1 {
		t.Errorf("service done started %d times, want 1", n)
	}
}

func TestStartErrors(t *testing.T) {
	_, log := newRecorded()
	missing := filepath.Join(t.TempDir(), "no-such-binary")
	for _, tc := range []struct {
		name string
		svc  Service
		want string
	}{
		{"no name", Service{Command: func() *exec.Cmd { return exec.Command("true") }}, "no name"},
		{"no command", Service{Name: "x"}, `"x": no command`},
		{"nil command", Service{Name: "x", Command: func() *exec.Cmd { return nil }}, "returned nil"},
		{"negative timeout", Service{Name: "x", Command: func() *exec.Cmd { return exec.Command("true") }, StopTimeout: -1}, "negative"},
		{"missing binary", Service{Name: "x", Command: func() *exec.Cmd { return exec.Command(missing) }}, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sup := New(log)
			err := sup.Start(tc.svc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want an error containing %q", err, tc.want)
			}
			if err := sup.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	sup := New(log)
	if err := sup.Start(shService("twice", "exec sleep 1000")); err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(shService("twice", "exec sleep 1000")); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start of one name: %v, want 'already started'", err)
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A Setsid command (the console shell) starts as a session leader, which
// cannot also be put in a new process group, and Stop still ends it.
func TestExecSetsid(t *testing.T) {
	logs, log := newRecorded()
	sup := New(log)
	dir := t.TempDir()
	sidFile := filepath.Join(dir, "sid")
	svc := Service{Name: "shell", Command: func() *exec.Cmd {
		c := exec.Command("/bin/sh", "-c", `ps -o sid= -p $$ > `+sidFile+`; exec sleep 1000`)
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return c
	}}
	if err := sup.Start(svc); err != nil {
		t.Fatal(err)
	}
	started := logs.waitLog(t, "service started", map[string]string{"service": "shell"})
	if got := waitFile(t, sidFile); got != started.attrs["pid"] {
		t.Errorf("session id %s, want the service's pid %s", got, started.attrs["pid"])
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, "service exited", map[string]string{"service": "shell", "status": "signal: terminated"})
}
