package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	agentruntime "github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/store"
)

// fakeStreams records what the API asks of the runtime; exec echoes its
// command, attach prints "attached", and port-forward answers its port.
type fakeStreams struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeStreams) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeStreams) Exec(ctx context.Context, id string, cmd []string, sio agentruntime.StreamIO) error {
	f.record("exec " + id + " " + strings.Join(cmd, " "))
	io.WriteString(sio.Stdout, strings.Join(cmd, " ")+"\n")
	if cmd[0] == "fail" {
		return &agentruntime.ExitError{Cmd: cmd, Code: 7}
	}
	return nil
}

func (f *fakeStreams) Attach(ctx context.Context, id string, sio agentruntime.StreamIO) error {
	f.record("attach " + id)
	io.WriteString(sio.Stdout, "attached\n")
	return nil
}

func (f *fakeStreams) PortForward(ctx context.Context, uid types.UID, port int32, stream io.ReadWriter) error {
	f.record("portforward " + string(uid))
	return nil
}

// streamsPods are a pod of two running containers and an init container,
// a pod whose container waits, and a pod not yet on a node.
func streamsPods(t *testing.T, st *store.Store) {
	t.Helper()
	run := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pods := []*corev1.Pod{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "two", UID: "uid-two"},
			Spec: corev1.PodSpec{NodeName: "board-1",
				InitContainers: []corev1.Container{{Name: "setup"}},
				Containers:     []corev1.Container{{Name: "app"}, {Name: "sidecar"}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "containerd://id-app", State: run},
				{Name: "sidecar", ContainerID: "containerd://id-sidecar", State: run},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "waiting", UID: "uid-waiting"},
			Spec:       corev1.PodSpec{NodeName: "board-1", Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "containerd://id-old", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unscheduled", UID: "uid-unscheduled"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		},
	}
	for _, p := range pods {
		if err := st.Put(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStreamingChecks: the API server's and kubelet's answers before any
// upgrade, as a client sees them.
func TestStreamingChecks(t *testing.T) {
	st := store.New(func() time.Time { return t0 })
	streamsPods(t, st)
	srv := httptest.NewServer(newServer(st, fakeLogs{}, Options{NodeName: "board-1", Streams: &fakeStreams{}}))
	defer srv.Close()
	noStreams := httptest.NewServer(newServer(st, fakeLogs{}, Options{NodeName: "board-1"}))
	defer noStreams.Close()
	tests := []struct {
		name, server, method, path string
		wantCode                   int
		wantReason                 metav1.StatusReason // "" = not a Status
		wantMessage                string
	}{
		{"no such pod", srv.URL, "POST", "/api/v1/namespaces/default/pods/nope/exec?command=true&stdout=true", 404, metav1.StatusReasonNotFound, `pods "nope" not found`},
		{"container must be named", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true", 400, metav1.StatusReasonBadRequest, "a container name must be specified for pod two, choose one of: [setup app sidecar]"},
		{"container not in the pod", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true&container=nope", 400, metav1.StatusReasonBadRequest, "container nope is not valid for pod two"},
		{"attach container not in the pod", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/attach?stdout=true&container=nope", 400, metav1.StatusReasonBadRequest, "container nope is not valid for pod two"},
		{"no stream", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?command=true&container=app", 400, metav1.StatusReasonBadRequest, "you must specify at least 1 of stdin, stdout, stderr"},
		{"no command", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?stdout=true&container=app", 400, metav1.StatusReasonBadRequest, "you must specify at least 1 command"},
		{"not on a node", srv.URL, "POST", "/api/v1/namespaces/default/pods/unscheduled/exec?command=true&stdout=true", 400, metav1.StatusReasonBadRequest, "pod unscheduled does not have a host assigned"},
		{"port-forward not on a node", srv.URL, "POST", "/api/v1/namespaces/default/pods/unscheduled/portforward", 400, metav1.StatusReasonBadRequest, "pod unscheduled does not have a host assigned"},
		{"container not running", srv.URL, "POST", "/api/v1/namespaces/default/pods/waiting/exec?command=true&stdout=true", 500, "", `container not found ("app")`},
		{"init container not running", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true&container=setup", 500, "", `container not found ("setup")`},
		{"method", srv.URL, "PUT", "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true&container=app", 405, metav1.StatusReasonMethodNotAllowed, `put is not supported on resources of kind "pods/exec"`},
		{"no runtime", noStreams.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true&container=app", 405, metav1.StatusReasonMethodNotAllowed, ""},
		{"a plain request is no upgrade", srv.URL, "POST", "/api/v1/namespaces/default/pods/two/exec?command=true&stdout=true&container=app", 400, "", "unable to upgrade: header X-Stream-Protocol-Version does not exist in request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.server+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.wantCode)
			}
			if tc.wantReason == "" {
				if !strings.Contains(string(body), tc.wantMessage) {
					t.Errorf("%s %s: body %q, want %q in it", tc.method, tc.path, body, tc.wantMessage)
				}
				return
			}
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("%s %s: not a Status: %v: %s", tc.method, tc.path, err, body)
			}
			if st.Reason != tc.wantReason || (tc.wantMessage != "" && st.Message != tc.wantMessage) {
				t.Errorf("%s %s: %s %q, want %s %q", tc.method, tc.path, st.Reason, st.Message, tc.wantReason, tc.wantMessage)
			}
		})
	}
}

// TestKubectlStreaming runs the real kubectl's exec, attach and
// port-forward requests against the API with a fake runtime: the checks'
// messages as kubectl prints them, the container chosen, the exit code.
func TestKubectlStreaming(t *testing.T) {
	st := store.New(func() time.Time { return t0 })
	streamsPods(t, st)
	fake := &fakeStreams{}
	srv := httptest.NewServer(newServer(st, fakeLogs{}, Options{NodeName: "board-1", Streams: fake}))
	defer srv.Close()
	k := newKubectl(t, srv.URL)
	tests := []struct {
		args             []string
		wantOut, wantErr string
		wantExit         int
		wantCall         string
	}{
		{args: []string{"exec", "two", "-c", "sidecar", "--", "echo", "hi"}, wantOut: "echo hi\n", wantCall: "exec id-sidecar echo hi"},
		{args: []string{"exec", "two", "-c", "app", "--", "fail", "now"}, wantOut: "fail now\n", wantErr: "command terminated with exit code 7\n", wantExit: 7, wantCall: "exec id-app fail now"},
		{args: []string{"exec", "two", "--", "true"}, wantOut: "true\n", wantErr: "Defaulted container \"app\" out of: app, sidecar, setup (init)\n", wantCall: "exec id-app true"},
		{args: []string{"attach", "two", "-c", "app"}, wantOut: "attached\n", wantErr: "If you don't see a command prompt, try pressing enter.\n", wantCall: "attach id-app"},
		{args: []string{"exec", "waiting", "--", "true"}, wantErr: "error: unable to upgrade connection: container not found (\"app\")\n", wantExit: 1},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fake.mu.Lock()
			fake.calls = nil
			fake.mu.Unlock()
			out, errOut, err := k.run(tc.args...)
			code := 0
			if ee, ok := err.(interface{ ExitCode() int }); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if out != tc.wantOut || errOut != tc.wantErr || code != tc.wantExit {
				t.Errorf("kubectl %q: stdout %q, stderr %q, exit %d; want %q, %q, %d", tc.args, out, errOut, code, tc.wantOut, tc.wantErr, tc.wantExit)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			var want []string
			if tc.wantCall != "" {
				want = []string{tc.wantCall}
			}
			if diff := cmp.Diff(want, fake.calls); diff != "" {
				t.Errorf("kubectl %q: runtime calls (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}
