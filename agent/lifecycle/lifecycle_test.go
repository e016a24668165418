package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podboot/podboot/agent/lifecycle"
	"github.com/podboot/podboot/agent/probe"
	"github.com/podboot/podboot/agent/runtime"
)

const userAgent = "kube-lifecycle/1.37"

// outcome is what one Run returned.
type outcome struct {
	Msg string
	Err string
}

func newOutcome(msg string, err error) outcome {
	o := outcome{Msg: msg}
	if err != nil {
		o.Err = err.Error()
	}
	return o
}

func target(podIP string) probe.Target {
	return probe.Target{
		Pod:         &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "1234"}},
		Container:   &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "hooks", ContainerPort: 1}}, Env: []corev1.EnvVar{{Name: "X", Value: "y"}}},
		ContainerID: "c1",
		PodIP:       podIP,
	}
}

// fakeExecer writes stdout and stderr, then exits with code or returns
// err; with block it waits for ctx to end and returns its error, as the
// containerd runtime does after killing the process.
type fakeExecer struct {
	stdout, stderr string
	code           int
	err            error
	block          bool

	mu       sync.Mutex
	cmd      []string
	id       string
	ctxEnded bool
}

func (f *fakeExecer) Exec(ctx context.Context, id string, cmd []string, sio runtime.StreamIO) error {
	f.mu.Lock()
	f.cmd, f.id = cmd, id
	f.mu.Unlock()
	fmt.Fprint(sio.Stderr, f.stderr)
	fmt.Fprint(sio.Stdout, f.stdout)
	if f.block {
		<-ctx.Done()
		f.mu.Lock()
		f.ctxEnded = true
		f.mu.Unlock()
		return fmt.Errorf("exec %q in container %q: %w", cmd, id, ctx.Err())
	}
	if f.code != 0 {
		return &runtime.ExitError{Cmd: cmd, Code: f.code}
	}
	return f.err
}

func TestRunExec(t *testing.T) {
	tests := []struct {
		name     string
		execer   *fakeExecer
		command  []string
		want     outcome
		wantExit int // the *runtime.ExitError's code the error wraps, 0 for none
	}{
		{
			name:    "success",
			execer:  &fakeExecer{stdout: "done"},
			command: []string{"sh", "-c", "echo $(X) > /tmp/started"},
		},
		{
			name:    "exit 1",
			execer:  &fakeExecer{stdout: "out\n", stderr: "no such file\n", code: 1},
			command: []string{"sh", "-c", "cat /nope"},
			want: outcome{
				Msg: `Exec lifecycle hook ([sh -c cat /nope]) for Container "app" in Pod "web_default(1234)" failed - error: command 'sh -c cat /nope' exited with 1: no such file` + "\n" + `, message: "out\nno such file\n"`,
				Err: "command 'sh -c cat /nope' exited with 1: no such file\n",
			},
			wantExit: 1,
		},
		{
			name:    "could not run",
			execer:  &fakeExecer{stdout: "ignored", err: errors.New(`exec ["true"] in container "c1": container is stopped, not running`)},
			command: []string{"true"},
			want: outcome{
				Msg: `Exec lifecycle hook ([true]) for Container "app" in Pod "web_default(1234)" failed - error: exec ["true"] in container "c1": container is stopped, not running, message: ""`,
				Err: `exec ["true"] in container "c1": container is stopped, not running`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &lifecycle.Runner{Exec: tt.execer}
			msg, err := r.Run(t.Context(), &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: tt.command}}, target(""))
			if diff := cmp.Diff(tt.want, newOutcome(msg, err)); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
			gotExit := 0
			if exit, ok := errors.AsType[*runtime.ExitError](err); ok {
				gotExit = exit.Code
			}
			if gotExit != tt.wantExit {
				t.Errorf("error wraps exit code %d, want %d", gotExit, tt.wantExit)
			}
			// kubelet does not expand $(VAR) in hooks' commands.
			if diff := cmp.Diff([]any{"c1", tt.command}, []any{tt.execer.id, tt.execer.cmd}); diff != "" {
				t.Errorf("Exec got (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunExecWithoutExecer(t *testing.T) {
	msg, err := (&lifecycle.Runner{}).Run(t.Context(), &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, target(""))
	want := outcome{
		Msg: `Exec lifecycle hook ([true]) for Container "app" in Pod "web_default(1234)" failed - error: exec ["true"] in container "c1": no exec runtime, message: ""`,
		Err: `exec ["true"] in container "c1": no exec runtime`,
	}
	if diff := cmp.Diff(want, newOutcome(msg, err)); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
}

// TestRunExecBoundedByContext: an exec hook has no timeout of its own; it
// runs until its context (the grace period, for preStop) ends, and the
// context Exec got ends with it.
func TestRunExecBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeExecer{block: true}
		r := &lifecycle.Runner{Exec: f}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		start := time.Now()
		msg, err := r.Run(ctx, &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "600"}}}, target(""))
		want := outcome{
			Msg: `Exec lifecycle hook ([sleep 600]) for Container "app" in Pod "web_default(1234)" failed - error: exec ["sleep" "600"] in container "c1": context deadline exceeded, message: ""`,
			Err: `exec ["sleep" "600"] in container "c1": context deadline exceeded`,
		}
		if diff := cmp.Diff(want, newOutcome(msg, err)); diff != "" {
			t.Errorf("Run (-want +got):\n%s", diff)
		}
		if !f.ctxEnded {
			t.Error("the context given to Exec did not end")
		}
		if d := time.Since(start); d != 30*time.Second {
			t.Errorf("Run took %v, want the context's 30s", d)
		}
	})
}

func TestRunSleep(t *testing.T) {
	tests := []struct {
		name     string
		seconds  int64
		cancelAt time.Duration // 0: never
		want     outcome
		wantTook time.Duration
	}{
		{name: "runs out", seconds: 5, wantTook: 5 * time.Second},
		{
			name: "container terminated", seconds: 5, cancelAt: 2 * time.Second,
			want: outcome{
				Msg: `Sleep lifecycle hook (5) for Container "app" in Pod "web_default(1234)" failed - error: container terminated before sleep hook finished`,
				Err: "container terminated before sleep hook finished",
			},
			wantTook: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tt.cancelAt > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.cancelAt)
					defer cancel()
				}
				r := &lifecycle.Runner{}
				start := time.Now()
				msg, err := r.Run(ctx, &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: tt.seconds}}, target(""))
				if diff := cmp.Diff(tt.want, newOutcome(msg, err)); diff != "" {
					t.Errorf("Run (-want +got):\n%s", diff)
				}
				if d := time.Since(start); d != tt.wantTook {
					t.Errorf("Run took %v, want %v", d, tt.wantTook)
				}
			})
		})
	}
}

func TestRunInvalidHandler(t *testing.T) {
	h := &corev1.LifecycleHandler{}
	msg, err := (&lifecycle.Runner{}).Run(t.Context(), h, target(""))
	// kubelet prints the handler with %v.
	invalid := fmt.Sprintf("invalid handler: %v", h)
	if diff := cmp.Diff(outcome{Msg: "Cannot run handler: " + invalid, Err: invalid}, newOutcome(msg, err)); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
}

// hookServer answers every path with code after delay, and records the
// requests it saw.
type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string // "METHOD path Host User-Agent"
}

func newHookServer(t *testing.T, tls bool) *hookServer {
	s := &hookServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, strings.Join([]string{r.Method, r.URL.Path, r.Host, r.Header.Get("User-Agent"), r.Header.Get("Authorization")}, " "))
		s.mu.Unlock()
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/elsewhere":
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://localhost:"+port+"/hook", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
		fmt.Fprint(w, "body")
	}))
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

func (s *hookServer) port() int { return s.Listener.Addr().(*net.TCPAddr).Port }

// recorder is an EventRecorder that keeps what it was given.
type recorder struct {
	events []string
}

func (r *recorder) Eventf(obj k8sruntime.Object, eventtype, reason, messageFmt string, args ...any) {
	pod := obj.(*corev1.Pod)
	r.events = append(r.events, fmt.Sprintf("%s %s %s %s", pod.Name, eventtype, reason, fmt.Sprintf(messageFmt, args...)))
}

func TestRunHTTP(t *testing.T) {
	plain := newHookServer(t, false)
	secure := newHookServer(t, true)
	port := plain.port()
	hostPort := "127.0.0.1:" + strconv.Itoa(port)
	refused := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()

	tests := []struct {
		name       string
		server     *hookServer
		action     corev1.HTTPGetAction
		podIP      string
		ctxTimeout time.Duration
		want       outcome
		wantSeen   []string
		wantEvents []string
	}{
		{
			name:     "200",
			action:   corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromInt(port)},
			wantSeen: []string{"GET /hook " + hostPort + " " + userAgent + " "},
		},
		{
			// kubelet does not look at a hook's status code.
			name:     "500 is not a failure",
			action:   corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(port)},
			wantSeen: []string{"GET /fail " + hostPort + " " + userAgent + " "},
		},
		{
			name:     "redirect to another host is not followed",
			action:   corev1.HTTPGetAction{Path: "/elsewhere", Port: intstr.FromInt(port)},
			wantSeen: []string{"GET /elsewhere " + hostPort + " " + userAgent + " "},
		},
		{
			name: "Host header",
			action: corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{
				{Name: "Host", Value: "hooks.test"},
			}},
			wantSeen: []string{"GET /hook hooks.test " + userAgent + " "},
		},
		{
			name:     "host field",
			action:   corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/hook", Port: intstr.FromInt(port)},
			podIP:    "pod-ip.invalid",
			wantSeen: []string{"GET /hook " + hostPort + " " + userAgent + " "},
		},
		{
			name:     "HTTPS without certificate checks",
			server:   secure,
			action:   corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/hook", Port: intstr.FromInt(secure.port())},
			wantSeen: []string{"GET /hook 127.0.0.1:" + strconv.Itoa(secure.port()) + " " + userAgent + " "},
		},
		{
			name: "HTTPS answered in HTTP: retried in HTTP without Authorization",
			action: corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/hook", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{
				{Name: "Authorization", Value: "Bearer x"},
			}},
			wantSeen:   []string{"GET /hook " + hostPort + " " + userAgent + " "},
			wantEvents: []string{"web Warning LifecycleHTTPFallback request to HTTPS lifecycle hook " + hostPort + " got HTTP response, retry with HTTP succeeded"},
		},
		{
			name:   "connection refused",
			action: corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromInt(refused)},
			want: outcome{
				Msg: fmt.Sprintf(`HTTP lifecycle hook (/hook) for Container "app" in Pod "web_default(1234)" failed - error: Get "http://127.0.0.1:%d/hook": dial tcp 127.0.0.1:%d: connect: connection refused`, refused, refused),
				Err: fmt.Sprintf(`Get "http://127.0.0.1:%d/hook": dial tcp 127.0.0.1:%d: connect: connection refused`, refused, refused),
			},
		},
		{
			name:       "bounded by the context",
			action:     corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(port)},
			ctxTimeout: 200 * time.Millisecond,
			want: outcome{
				Msg: fmt.Sprintf(`HTTP lifecycle hook (/slow) for Container "app" in Pod "web_default(1234)" failed - error: Get "http://%s/slow": context deadline exceeded`, hostPort),
				Err: fmt.Sprintf(`Get "http://%s/slow": context deadline exceeded`, hostPort),
			},
			wantSeen: []string{"GET /slow " + hostPort + " " + userAgent + " "},
		},
		{
			name:   "unknown named port",
			action: corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromString("admin")},
			want: outcome{
				Msg: `HTTP lifecycle hook (/hook) for Container "app" in Pod "web_default(1234)" failed - error: port "admin" not found`,
				Err: `port "admin" not found`,
			},
		},
		{
			name:   "no pod IP",
			action: corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromInt(port)},
			podIP:  "-",
			want: outcome{
				Msg: `HTTP lifecycle hook (/hook) for Container "app" in Pod "web_default(1234)" failed - error: failed to find networking container: pod web_default(1234) has no IP`,
				Err: `failed to find networking container: pod web_default(1234) has no IP`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.server
			if srv == nil {
				srv = plain
			}
			before := len(srv.seen())
			rec := &recorder{}
			r := &lifecycle.Runner{UserAgent: userAgent, Events: rec}
			ctx := t.Context()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			podIP := tt.podIP
			switch podIP {
			case "":
				podIP = "127.0.0.1"
			case "-":
				podIP = ""
			}
			action := tt.action
			msg, err := r.Run(ctx, &corev1.LifecycleHandler{HTTPGet: &action}, target(podIP))
			if diff := cmp.Diff(tt.want, newOutcome(msg, err)); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSeen, srv.seen()[before:], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("server saw (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, rec.events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunHTTPDial: an httpGet hook dials the pod IP through Runner.Dial.
func TestRunHTTPDial(t *testing.T) {
	srv := newHookServer(t, false)
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, network+" "+addr)
		return probe.DefaultDial(ctx, network, srv.Listener.Addr().String())
	}
	r := &lifecycle.Runner{UserAgent: userAgent, Dial: dial}
	msg, err := r.Run(t.Context(), &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/hook", Port: intstr.FromString("hooks")}}, target("pod-ip.invalid"))
	if diff := cmp.Diff(outcome{}, newOutcome(msg, err)); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"tcp pod-ip.invalid:1"}, dialed); diff != "" {
		t.Errorf("dialed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GET /hook pod-ip.invalid:1 " + userAgent + " "}, srv.seen()); diff != "" {
		t.Errorf("server saw (-want +got):\n%s", diff)
	}
}
