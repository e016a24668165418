package streaming_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/internal/integration"
)

// TestIntegrationKubectlExec runs the stock kubectl's exec, cp, attach and
// port-forward against the API over a real containerd: kubectl 1.32 speaks
// WebSocket v5 for exec, attach and cp, and tunnels SPDY through a
// WebSocket for port-forward.
func TestIntegrationKubectlExec(t *testing.T) {
	board := newBoard(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			b := *board
			b.t, b.env = t, p.env
			testKubectlExec(t, &b)
		})
	}
}

func testKubectlExec(t *testing.T, b *board) {

	t.Run("exit codes", func(t *testing.T) {
		for _, code := range []int{0, 1, 3, 42} {
			out, errOut, err := b.kubectl(nil, "exec", "web", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2; exit "+itoa(code))
			if got := exitCode(err); got != code {
				t.Errorf("kubectl exec ... exit %d: exit code %d (%v), stderr:\n%s", code, got, err, errOut)
			}
			if out != "out\n" || !strings.HasPrefix(errOut, "err\n") {
				t.Errorf("kubectl exec ... exit %d: stdout %q, stderr %q; want out and err", code, out, errOut)
			}
		}
	})

	t.Run("stdin", func(t *testing.T) {
		in := strings.Repeat("a line of input\n", 2000) // more than a pipe holds
		out := b.ok(t, strings.NewReader(in), "exec", "-i", "web", "-c", "main", "--", "sh", "-c", "cat; echo done")
		if diff := cmp.Diff(in+"done\n", out); diff != "" {
			t.Errorf("kubectl exec -i ... cat (-want +got):\n%s", diff)
		}
	})

	t.Run("nothing on kubectl's stderr", func(t *testing.T) {
		// kubectl 1.32 logs a frame that comes before it has made its
		// streams ("Unknown stream id 1, discarding message"): a race
		// that a busy machine makes likelier, so the exec runs many
		// times, a few at once.
		const workers, runs = 3, 12
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range runs {
					out, errOut, err := b.kubectl(strings.NewReader("hello\nline 2\n"), "exec", "-i", "web", "-c", "main", "--", "sh", "-c", "cat; echo done")
					if err != nil || out != "hello\nline 2\ndone\n" || errOut != "" {
						t.Errorf("worker %d, run %d: kubectl exec -i ... cat; echo done: %v, stdout %q, stderr %q; want the input and done, nothing on stderr", w, i+1, err, out, errOut)
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("container", func(t *testing.T) {
		for _, tc := range []struct{ container, want string }{{"side", "side\n"}, {"main", "\n"}} {
			out := b.ok(t, nil, "exec", "web", "-c", tc.container, "--", "sh", "-c", "echo $WHO")
			if out != tc.want {
				t.Errorf("kubectl exec -c %s -- echo $WHO = %q, want %q", tc.container, out, tc.want)
			}
		}
		_, errOut, err := b.kubectl(nil, "exec", "web", "-c", "nope", "--", "true")
		if want := "Error from server (BadRequest): container nope is not valid for pod web\n"; err == nil || errOut != want {
			t.Errorf("kubectl exec -c nope: %v, stderr %q; want %q", err, errOut, want)
		}
	})

	t.Run("tty", func(t *testing.T) {
		// script(1) gives kubectl a terminal of 33x77; kubectl sends its
		// size on the resize stream, and the process sees it.
		script, err := exec.LookPath("script")
		if err != nil {
			integration.Unavailable(t, "kubectl exec -t needs script(1) (bsdutils) for a terminal: %v", err)
		}
		kc := b.command(context.Background(), "exec", "-it", "web", "-c", "main", "--", "sh", "-c", "stty size; tty; echo $TERM")
		line := "stty rows 33 cols 77; exec " + shellJoin(kc.Args)
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, script, "-qfec", line, "/dev/null")
		cmd.Env = kc.Env
		cmd.Stdin = strings.NewReader("") // script keeps its own terminal
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl exec -it: %v\n%s", err, out.String())
		}
		got := strings.ReplaceAll(out.String(), "\r", "")
		for _, want := range []string{"33 77\n", "/dev/pts/", "xterm\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("kubectl exec -it ... stty size; tty; echo $TERM = %q, want it to contain %q", got, want)
			}
		}
	})

	t.Run("cp", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "data.bin")
		data := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 40000)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		b.ok(t, nil, "cp", src, "web:/tmp/data.bin", "-c", "main")
		if out := b.ok(t, nil, "exec", "web", "-c", "main", "--", "wc", "-c", "/tmp/data.bin"); !strings.HasPrefix(strings.TrimSpace(out), itoa(len(data))) {
			t.Errorf("after kubectl cp to the container: wc -c = %q, want %d", out, len(data))
		}
		dst := filepath.Join(t.TempDir(), "back.bin")
		b.ok(t, nil, "cp", "web:/tmp/data.bin", dst, "-c", "main")
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("kubectl cp from the container: %d bytes, want the %d sent", len(got), len(data))
		}
	})

	t.Run("attach", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		cmd := b.command(ctx, "attach", "web", "-c", "side")
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(out.String(), "tick\n") < 3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		_ = cmd.Wait()
		if n := strings.Count(out.String(), "tick\n"); n < 3 {
			t.Errorf("kubectl attach web -c side: %d ticks, want 3 or more; output:\n%s", n, out.String())
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		// Two ports by number, and the same one by its name.
		pf := b.portForward(t, ":8080", ":8081")
		defer pf.stop()
		for port, want := range map[string]string{"8080": "eighty-eighty\n", "8081": "eighty-eighty-one\n"} {
			for i := range 3 { // several connections over one session
				got, err := get(pf.local[port])
				if err != nil || got != want {
					t.Errorf("GET #%d through port-forward to %s: %q, %v; want %q", i, port, got, err, want)
				}
			}
		}
		named := b.portForward(t, ":http")
		defer named.stop()
		if got, err := get(named.local["8080"]); err != nil || got != "eighty-eighty\n" {
			t.Errorf("GET through port-forward to the named port http: %q, %v; want eighty-eighty", got, err)
		}
	})

	t.Run("port-forward to a closed port", func(t *testing.T) {
		pf := b.portForward(t, ":9999")
		defer pf.stop()
		if got, err := get(pf.local["9999"]); err == nil {
			t.Errorf("GET through port-forward to a port nothing listens on = %q, want an error", got)
		}
		// The failure is kubelet's message, on the connection's error
		// stream.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(pf.stderr.String(), "error forwarding port 9999 to pod") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(pf.stderr.String(), "error forwarding port 9999 to pod") {
			t.Errorf("kubectl port-forward stderr = %q, want kubelet's error forwarding port", pf.stderr.String())
		}
	})
}
