package streaming_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/streaming"
)

// The protocol glue is tested with client-go's own executors and port
// forwarder, the code inside kubectl: the WebSocket v5 executor kubectl
// 1.30+ tries first, the SPDY one it falls back to, the SPDY-over-
// WebSocket tunnel of port-forward and plain SPDY.

// executors are client-go's exec clients by protocol: kubectl's
// WebSocket v5, an older WebSocket v4 client, and SPDY.
var executors = []struct {
	name string
	new  func(t *testing.T, u *url.URL) remotecommand.Executor
}{
	{"websocket", func(t *testing.T, u *url.URL) remotecommand.Executor {
		e, err := remotecommand.NewWebSocketExecutor(&rest.Config{Host: u.Host}, "GET", u.String())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}},
	{"websocket v4", func(t *testing.T, u *url.URL) remotecommand.Executor {
		// Older WebSocket clients (v4.channel.k8s.io) reach kubelet's
		// own WebSocket server.
		e, err := remotecommand.NewWebSocketExecutorForProtocols(&rest.Config{Host: u.Host}, "GET", u.String(), "v4.channel.k8s.io")
		if err != nil {
			t.Fatal(err)
		}
		return e
	}},
	{"spdy", func(t *testing.T, u *url.URL) remotecommand.Executor {
		e, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: u.Host}, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}},
}

// execServer serves ServeExec with the options of the query (as the API
// does) and the session under test.
func execServer(t *testing.T, run streaming.SessionFunc) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		opts := streaming.Options{Stdin: q.Get("stdin") == "true", Stdout: q.Get("stdout") == "true", Stderr: q.Get("stderr") == "true", TTY: q.Get("tty") == "true"}
		if err := opts.Validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		streaming.ServeExec(w, r, opts, run)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func withQuery(u *url.URL, q string) *url.URL {
	c := *u
	c.RawQuery = q
	return &c
}

func TestExecStreams(t *testing.T) {
	for _, ex := range executors {
		if ex.name == "websocket v4" {
			continue // v4 has no CLOSE signal: its stdin cannot end
		}
		t.Run(ex.name, func(t *testing.T) {
			// cat with an exit code: stdin to stdout until the client's
			// stdin ends (v5's CLOSE, SPDY's half-close), "err" on stderr.
			u := execServer(t, func(ctx context.Context, sio runtime.StreamIO) error {
				if sio.Stdin == nil || sio.Stdout == nil || sio.Stderr == nil || sio.TTY {
					return fmt.Errorf("streams: %+v", sio)
				}
				if _, err := io.Copy(sio.Stdout, sio.Stdin); err != nil {
					return err
				}
				io.WriteString(sio.Stderr, "err\n")
				return &runtime.ExitError{Cmd: []string{"cat"}, Code: 3}
			})
			e := ex.new(t, withQuery(u, "stdin=true&stdout=true&stderr=true"))
			in := strings.Repeat("0123456789", 100000)
			var out, errOut bytes.Buffer
			err := e.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdin: strings.NewReader(in), Stdout: &out, Stderr: &errOut})
			var exit utilexec.CodeExitError
			if !errors.As(err, &exit) || exit.Code != 3 {
				t.Errorf("exit: %v (%T), want exit code 3", err, err)
			}
			if out.String() != in {
				t.Errorf("stdout: %d bytes, want the %d of stdin", out.Len(), len(in))
			}
			if errOut.String() != "err\n" {
				t.Errorf("stderr: %q, want err", errOut.String())
			}
		})
	}
}

func TestExecSuccessAndFailure(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr string // "" = success
	}{
		{"success", nil, ""},
		{"wrapped exit code", fmt.Errorf("exec: %w", &runtime.ExitError{Cmd: []string{"false"}, Code: 1}), "command terminated with exit code 1"},
		{"internal error", errors.New("container is stopped, not running"), "Internal error occurred: error executing command in container: container is stopped, not running"},
	}
	for _, ex := range executors {
		for _, tc := range tests {
			t.Run(ex.name+"/"+tc.name, func(t *testing.T) {
				u := execServer(t, func(ctx context.Context, sio runtime.StreamIO) error {
					io.WriteString(sio.Stdout, "hello\n")
					return tc.err
				})
				var out bytes.Buffer
				err := ex.new(t, withQuery(u, "stdout=true")).StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &out})
				got := ""
				if err != nil {
					got = err.Error()
				}
				if got != tc.wantErr {
					t.Errorf("error = %q, want %q", got, tc.wantErr)
				}
				if out.String() != "hello\n" {
					t.Errorf("stdout = %q, want hello", out.String())
				}
			})
		}
	}
}

// sizeQueue hands the client's terminal sizes to the executor.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

func TestExecTerminalResize(t *testing.T) {
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			got := make(chan runtime.TerminalSize, 10)
			u := execServer(t, func(ctx context.Context, sio runtime.StreamIO) error {
				if !sio.TTY || sio.Stderr != nil || sio.Resize == nil {
					return fmt.Errorf("streams: %+v", sio)
				}
				for i := 0; i < 2; i++ {
					select {
					case s := <-sio.Resize:
						got <- s
					case <-time.After(10 * time.Second):
						return errors.New("no size")
					}
				}
				return nil
			})
			sizes := make(sizeQueue, 2)
			sizes <- remotecommand.TerminalSize{Width: 80, Height: 24}
			sizes <- remotecommand.TerminalSize{Width: 132, Height: 43}
			var out bytes.Buffer
			// kubectl asks for stderr too; a terminal has none.
			err := ex.new(t, withQuery(u, "stdout=true&stderr=true&tty=true")).StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
			close(sizes)
			if err != nil {
				t.Fatal(err)
			}
			close(got)
			var sizesGot []runtime.TerminalSize
			for s := range got {
				sizesGot = append(sizesGot, s)
			}
			want := []runtime.TerminalSize{{Width: 80, Height: 24}, {Width: 132, Height: 43}}
			if diff := cmp.Diff(want, sizesGot); diff != "" {
				t.Errorf("sizes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSessionEndsWithClient: a client that goes away mid-session ends the
// session's context (a hijacked request's own context would not end).
func TestSessionEndsWithClient(t *testing.T) {
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan struct{})
			u := execServer(t, func(ctx context.Context, sio runtime.StreamIO) error {
				io.WriteString(sio.Stdout, "started\n")
				close(started)
				select {
				case <-ctx.Done():
					close(ended)
				case <-time.After(20 * time.Second):
				}
				return ctx.Err()
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r, w := io.Pipe()
			go func() {
				<-started
				cancel()
				w.Close()
			}()
			_ = ex.new(t, withQuery(u, "stdout=true")).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: w})
			go io.Copy(io.Discard, r)
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the session's context did not end when the client went away")
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		in, want streaming.Options
		wantErr  bool
	}{
		{in: streaming.Options{Stdout: true, Stderr: true}, want: streaming.Options{Stdout: true, Stderr: true}},
		{in: streaming.Options{Stdin: true, Stdout: true, Stderr: true, TTY: true}, want: streaming.Options{Stdin: true, Stdout: true, TTY: true}},
		{in: streaming.Options{Stdin: true}, want: streaming.Options{Stdin: true}},
		{in: streaming.Options{TTY: true, Stderr: true}, want: streaming.Options{TTY: true}, wantErr: true},
		{in: streaming.Options{}, wantErr: true},
	}
	for _, tc := range tests {
		got := tc.in
		err := got.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%+v.Validate() = %v, want error %v", tc.in, err, tc.wantErr)
		}
		if err != nil {
			if want := "you must specify at least 1 of stdin, stdout, stderr"; err.Error() != want {
				t.Errorf("%+v.Validate() = %q, want %q", tc.in, err, want)
			}
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%+v.Validate() (-want +got):\n%s", tc.in, diff)
		}
	}
}

// portforwardDialer is what client-go's port forwarder dials with.
type portforwardDialer = httpstream.Dialer

// dialers are client-go's port-forward dialers by protocol.
var dialers = []struct {
	name string
	new  func(t *testing.T, u *url.URL) func() (portforwardDialer, error)
}{
	{"websocket tunnel", func(t *testing.T, u *url.URL) func() (portforwardDialer, error) {
		return func() (portforwardDialer, error) {
			return portforward.NewSPDYOverWebsocketDialer(u, &rest.Config{Host: u.Host})
		}
	}},
	{"spdy", func(t *testing.T, u *url.URL) func() (portforwardDialer, error) {
		return func() (portforwardDialer, error) {
			transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{Host: u.Host})
			if err != nil {
				return nil, err
			}
			return spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u), nil
		}
	}},
}

func TestPortForward(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			// Port 80 echoes one line upper-cased, with its port; port 81
			// refuses.
			var mu sync.Mutex
			var ports []int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				streaming.ServePortForward(w, r, func(ctx context.Context, port int32, stream io.ReadWriteCloser) error {
					mu.Lock()
					ports = append(ports, port)
					mu.Unlock()
					if port == 81 {
						return errors.New("connection refused")
					}
					line, err := readLine(stream)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(stream, "%d %s\n", port, strings.ToUpper(line))
					return err
				})
			}))
			defer srv.Close()
			u, _ := url.Parse(srv.URL)
			dialer, err := d.new(t, u)()
			if err != nil {
				t.Fatal(err)
			}
			stop, ready := make(chan struct{}), make(chan struct{})
			var out, errOut syncBuffer
			fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:80", "0:81"}, stop, ready, &out, &errOut)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- fw.ForwardPorts() }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("ForwardPorts: %v", err)
			}
			local, err := fw.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				got, err := roundTrip(local[0].Local, fmt.Sprintf("hello %d", i))
				if want := fmt.Sprintf("80 HELLO %d", i); err != nil || got != want {
					t.Errorf("through the forward to 80: %q, %v; want %q", got, err, want)
				}
			}
			if got, err := roundTrip(local[1].Local, "hello"); err == nil && got != "" {
				t.Errorf("through the forward to 81 (refused) = %q, want nothing", got)
			}
			close(stop)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("ForwardPorts did not end")
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff([]int32{80, 80, 80, 81}, ports); diff != "" {
				t.Errorf("forwarded ports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPortForwardTunnelNeedsProtocol(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streaming.ServePortForward(w, r, func(context.Context, int32, io.ReadWriteCloser) error { return nil })
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Protocol", "SPDY/3.1+exec.k8s.io")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "no tunneling spdy protocols provided") {
		t.Errorf("tunnel offering no port-forward protocol: %s %q, want 400 no tunneling spdy protocols provided", resp.Status, body)
	}
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// roundTrip sends a line to the local port and reads the answer line.
func roundTrip(port uint16, line string) (string, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return readLine(c)
}
