package streaming_test

import (
	"context"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// TestIntegrationSessionsLeaveNothing opens and closes 50 exec and 50
// port-forward sessions through the stock kubectl, over both protocols,
// some of them cut off by the client mid-session, and then finds the
// agent's goroutines and open files back where they started.
func TestIntegrationSessionsLeaveNothing(t *testing.T) {
	b := newBoard(t)
	// The first sessions start what lives as long as the runtime (the
	// containerd client's connections, the HTTP server's keep-alives).
	for _, p := range protocols {
		b.env = p.env
		b.ok(t, strings.NewReader("warm"), "exec", "-i", "web", "-c", "main", "--", "cat")
		pf := b.portForward(t, ":8080")
		if _, err := get(pf.local["8080"]); err != nil {
			t.Fatal(err)
		}
		pf.stop()
	}
	startG, startFDs := settle(t, 0, 0)
	t.Logf("before: %d goroutines, %d open files", startG, startFDs)

	for i := range 50 {
		b.env = protocols[i%2].env
		if i%5 == 4 {
			// kubectl killed while its command runs: the process in the
			// container goes with the session.
			ctx, cancel := context.WithCancel(b.ctx)
			cmd := b.command(ctx, "exec", "web", "-c", "main", "--", "sh", "-c", "echo started; exec sleep 600")
			out := &syncBuffer{}
			cmd.Stdout = out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return strings.Contains(out.String(), "started") }, "exec #%d to start", i)
			cancel()
			_ = cmd.Wait()
		} else {
			in := "session " + itoa(i) + "\n"
			if got := b.ok(t, strings.NewReader(in), "exec", "-i", "web", "-c", "main", "--", "cat"); got != in {
				t.Fatalf("exec #%d: cat echoed %q, want %q", i, got, in)
			}
		}
		pf := b.portForward(t, ":8080", ":8081")
		for _, port := range []string{"8080", "8081"} {
			if _, err := get(pf.local[port]); err != nil {
				t.Fatalf("port-forward #%d to %s: %v", i, port, err)
			}
		}
		pf.stop()
	}
	// A killed session's sleep is gone from the container too.
	waitFor(t, func() bool {
		out, _, err := b.kubectl(nil, "exec", "web", "-c", "main", "--", "sh", "-c", "ps -o comm | grep -c '^sleep' || true")
		return err == nil && strings.TrimSpace(out) == "0"
	}, "the killed sessions' processes to go")

	g, fds := settle(t, startG, startFDs)
	if g > startG || fds > startFDs {
		buf := make([]byte, 1<<20)
		n := goruntime.Stack(buf, true)
		t.Errorf("after 100 sessions: %d goroutines (was %d), %d open files (was %d)\n%s\n%s", g, startG, fds, startFDs, openFiles(t), buf[:n])
	}
}

// TestIntegrationSessionsEndWithPod stops and removes the pod while an
// exec, an attach and a forwarded connection are open: each ends, kubectl
// exec exits with the killed command's status, and nothing is left.
func TestIntegrationSessionsEndWithPod(t *testing.T) {
	b := newBoard(t)
	for _, p := range protocols {
		b.env = p.env
		b.ok(t, nil, "exec", "web", "-c", "main", "--", "true")
	}
	startG, startFDs := settle(t, 0, 0)
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()

	type running struct {
		name string
		cmd  interface{ Wait() error }
		out  *syncBuffer
		done chan error
	}
	var sessions []*running
	for _, p := range protocols {
		b.env = p.env
		for _, args := range [][]string{
			{"exec", "-i", "web", "-c", "main", "--", "sh", "-c", "echo started; exec sleep 600"},
			{"attach", "web", "-c", "side"},
		} {
			cmd := b.command(ctx, args...)
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			stdin, err := cmd.StdinPipe() // held open: the session does not end by its input
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r := &running{name: p.name + " " + args[0], cmd: cmd, out: out, done: make(chan error, 1)}
			go func() { r.done <- cmd.Wait() }()
			sessions = append(sessions, r)
			want := "started"
			if args[0] == "attach" {
				want = "tick"
			}
			waitFor(t, func() bool { return strings.Contains(out.String(), want) }, "%s to start", r.name)
		}
	}
	var conns []net.Conn
	var forwards []*portForward
	for _, p := range protocols {
		b.env = p.env
		pf := b.portForward(t, ":8080")
		forwards = append(forwards, pf)
		// A connection through the forward that httpd holds open, waiting
		// for the rest of its request.
		c, err := net.Dial("tcp", pf.local["8080"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	for _, id := range b.ids {
		if err := b.rt.StopContainer(b.ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := b.rt.RemoveContainer(b.ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	for _, s := range sessions {
		select {
		case err := <-s.done:
			if strings.HasSuffix(s.name, "exec") {
				if code := exitCode(err); code != 137 {
					t.Errorf("%s of a killed sleep: exit code %d (%v), want 137; output:\n%s", s.name, code, err, s.out)
				}
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s still runs 20s after its pod stopped; output:\n%s", s.name, s.out)
		}
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.ReadAll(c)
		if os.IsTimeout(err) {
			t.Errorf("forwarded connection #%d still open 20s after its pod stopped", i)
		}
		c.Close()
	}
	// The pod goes from the API too: each forward's session ends, and
	// kubectl port-forward exits by itself.
	if err := b.st.Delete("Pod", "default", "web"); err != nil {
		t.Fatal(err)
	}
	for i, pf := range forwards {
		select {
		case <-pf.done:
			if !strings.Contains(pf.stderr.String(), "lost connection to pod") {
				t.Errorf("kubectl port-forward #%d after its pod went: %v, stderr %q; want lost connection to pod", i, pf.err, pf.stderr)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("kubectl port-forward #%d still runs 15s after its pod went", i)
			pf.stop()
		}
	}
	g, fds := settle(t, startG, startFDs)
	if g > startG || fds > startFDs {
		buf := make([]byte, 1<<20)
		n := goruntime.Stack(buf, true)
		t.Errorf("after the pod stopped: %d goroutines (was %d), %d open files (was %d)\n%s\n%s", g, startG, fds, startFDs, openFiles(t), buf[:n])
	}
}

// settle polls the goroutine and open-file counts until they are at most
// the given ones (0: until they stop falling), for at most 15 seconds,
// and returns them.
func settle(t *testing.T, maxG, maxFDs int) (int, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	lastG, lastFDs := -1, -1
	for {
		g, fds := goruntime.NumGoroutine(), len(openFilesList(t))
		if maxG > 0 && g <= maxG && fds <= maxFDs {
			return g, fds
		}
		if maxG == 0 && g == lastG && fds == lastFDs {
			return g, fds
		}
		if time.Now().After(deadline) {
			return g, fds
		}
		lastG, lastFDs = g, fds
		time.Sleep(500 * time.Millisecond)
	}
}

func openFilesList(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+" -> "+target)
	}
	return out
}

func openFiles(t *testing.T) string { return strings.Join(openFilesList(t), "\n") }

// waitFor polls cond for at most 20 seconds.
func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
