package probe_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podboot/podboot/agent/probe"
)

// seen is what the test server saw of one request.
type seen struct {
	Path, Host, Proto string
	Header            http.Header
}

// probeServer is an HTTP server with the handlers the probe tests use; it
// records what every request carried.
type probeServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newProbeServer(t *testing.T, tls bool) *probeServer {
	s := &probeServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "secret body kept out of the message")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("b", 20*1024)) })
	mux.HandleFunc("/same-host", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/other-host", func(w http.ResponseWriter, r *http.Request) {
		// The same server under another name: kubelet compares names.
		_, port, _ := net.SplitHostPort(r.Host)
		w.Header().Set("Location", "http://localhost:"+port+"/ok")
		w.WriteHeader(http.StatusMovedPermanently)
		fmt.Fprint(w, "moved")
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{Path: r.URL.Path, Host: r.Host, Proto: r.Proto, Header: r.Header.Clone()})
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	if tls {
		s.EnableHTTP2 = true
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *probeServer) port() int { return s.Listener.Addr().(*net.TCPAddr).Port }

func (s *probeServer) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

const userAgent = "kube-probe/1.37"

func TestProbeHTTP(t *testing.T) {
	plain := newProbeServer(t, false)
	secure := newProbeServer(t, true)
	port := plain.port()
	hostPort := "127.0.0.1:" + strconv.Itoa(port)
	refused := closedPort(t)
	// Connection: close is no keep-alive: the probe's connection ends
	// with its response.
	defaultHeader := http.Header{"User-Agent": {userAgent}, "Accept": {"*/*"}, "Connection": {"close"}}
	// HTTP/2 has no Connection header; the transport closes the
	// connection when it is idle.
	h2Header := http.Header{"User-Agent": {userAgent}, "Accept": {"*/*"}}

	tests := []struct {
		name     string
		server   *probeServer
		action   corev1.HTTPGetAction
		podIP    string
		timeout  time.Duration
		want     outcome
		wantSeen []seen
	}{
		{
			name:     "200",
			action:   corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port)},
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:     "named port",
			action:   corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("http")},
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name: "headers, Host and User-Agent from httpHeaders",
			action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{
				{Name: "Host", Value: "example.test"},
				{Name: "user-agent", Value: "mine/1"},
				{Name: "X-Custom-Header", Value: "Awesome"},
				{Name: "X-Custom-Header", Value: "Twice"},
			}},
			want: outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: "example.test", Proto: "HTTP/1.1", Header: http.Header{
				"User-Agent": {"mine/1"}, "Accept": {"*/*"}, "Connection": {"close"}, "X-Custom-Header": {"Awesome", "Twice"},
			}}},
		},
		{
			name: "empty Accept removes it",
			action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{
				{Name: "Accept", Value: ""},
			}},
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: http.Header{"User-Agent": {userAgent}, "Connection": {"close"}}}},
		},
		{
			name: "Accept set",
			action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{
				{Name: "Accept", Value: "application/json"},
			}},
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: http.Header{"User-Agent": {userAgent}, "Accept": {"application/json"}, "Connection": {"close"}}}},
		},
		{
			name:     "query kept",
			action:   corev1.HTTPGetAction{Path: "/ok?x=1", Port: intstr.FromInt(port)},
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:     "500",
			action:   corev1.HTTPGetAction{Path: "/fail", Port: intstr.FromInt(port)},
			want:     outcome{Result: probe.Failure, Output: "HTTP probe failed with statuscode: 500"},
			wantSeen: []seen{{Path: "/fail", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:     "404",
			action:   corev1.HTTPGetAction{Path: "/nowhere", Port: intstr.FromInt(port)},
			want:     outcome{Result: probe.Failure, Output: "HTTP probe failed with statuscode: 404"},
			wantSeen: []seen{{Path: "/nowhere", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:     "body cut at 10 KiB",
			action:   corev1.HTTPGetAction{Path: "/big", Port: intstr.FromInt(port)},
			want:     outcome{Result: probe.Success, Output: strings.Repeat("b", 10*1024)},
			wantSeen: []seen{{Path: "/big", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:   "redirect to the same host is followed",
			action: corev1.HTTPGetAction{Path: "/same-host", Port: intstr.FromInt(port)},
			want:   outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{
				{Path: "/same-host", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader},
				{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: http.Header{"User-Agent": {userAgent}, "Accept": {"*/*"}, "Connection": {"close"}, "Referer": {"http://" + hostPort + "/same-host"}}},
			},
		},
		{
			name:     "redirect to another host is a warning",
			action:   corev1.HTTPGetAction{Path: "/other-host", Port: intstr.FromInt(port)},
			want:     outcome{Result: probe.Warning, Output: "Probe terminated redirects, Response body: moved"},
			wantSeen: []seen{{Path: "/other-host", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:   "redirect loop",
			action: corev1.HTTPGetAction{Path: "/loop", Port: intstr.FromInt(port)},
			want:   outcome{Result: probe.Failure, Output: `Get "/loop": stopped after 10 redirects`},
		},
		{
			name:    "slow server",
			action:  corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt(port)},
			timeout: 200 * time.Millisecond,
			want:    outcome{Result: probe.Failure, Output: fmt.Sprintf(`Get "http://%s/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, hostPort)},
		},
		{
			name:   "connection refused",
			action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(refused)},
			want:   outcome{Result: probe.Failure, Output: fmt.Sprintf(`Get "http://127.0.0.1:%d/ok": dial tcp 127.0.0.1:%d: connect: connection refused`, refused, refused)},
		},
		{
			name:   "unknown named port",
			action: corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("metrics")},
			want:   outcome{Result: probe.Unknown, Err: `port "metrics" not found`},
		},
		{
			name:     "host field instead of pod IP",
			action:   corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/ok", Port: intstr.FromInt(port)},
			podIP:    "pod-ip.invalid",
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: hostPort, Proto: "HTTP/1.1", Header: defaultHeader}},
		},
		{
			name:     "HTTPS without certificate checks, HTTP/2 when offered",
			server:   secure,
			action:   corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/ok", Port: intstr.FromInt(secure.port())},
			want:     outcome{Result: probe.Success, Output: "ok"},
			wantSeen: []seen{{Path: "/ok", Host: "127.0.0.1:" + strconv.Itoa(secure.port()), Proto: "HTTP/2.0", Header: h2Header}},
		},
		{
			name:   "HTTPS 500",
			server: secure,
			action: corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/fail", Port: intstr.FromInt(secure.port())},
			want:   outcome{Result: probe.Failure, Output: "HTTP probe failed with statuscode: 500"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.server
			if srv == nil {
				srv = plain
			}
			before := len(srv.seen())
			dial := &connTracker{}
			p := &probe.Prober{UserAgent: userAgent, Dial: dial.Dial}
			podIP := tt.podIP
			if podIP == "" {
				podIP = "127.0.0.1"
			}
			target := probe.Target{
				Pod:       testPod(),
				Container: &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}},
				PodIP:     podIP,
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			action := tt.action
			got := newOutcome(p.Probe(t.Context(), &corev1.ProbeHandler{HTTPGet: &action}, target, timeout))
			if tt.name == "redirect loop" {
				// The URL in the message is the last one asked for.
				got.Output = strings.Replace(got.Output, "http://"+hostPort, "", 1)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Probe (-want +got):\n%s", diff)
			}
			if tt.wantSeen != nil {
				if diff := cmp.Diff(tt.wantSeen, srv.seen()[before:]); diff != "" {
					t.Errorf("server saw (-want +got):\n%s", diff)
				}
			}
			if _, err := dial.dialed(); err != nil {
				t.Errorf("after Probe: %v", err)
			}
		})
	}
}

// TestProbeHTTPDial: the probe dials through Prober.Dial, to the pod IP
// by default, and the Host header names that address.
func TestProbeHTTPDial(t *testing.T) {
	srv := newProbeServer(t, false)
	dial := &connTracker{to: srv.Listener.Addr().String()}
	p := &probe.Prober{UserAgent: userAgent, Dial: dial.Dial}
	target := probe.Target{Pod: testPod(), Container: &corev1.Container{Name: "app"}, PodIP: "pod-ip.invalid"}
	h := &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt(8080)}}
	got := newOutcome(p.Probe(t.Context(), h, target, 5*time.Second))
	if diff := cmp.Diff(outcome{Result: probe.Success, Output: "ok"}, got); diff != "" {
		t.Errorf("Probe (-want +got):\n%s", diff)
	}
	addrs, err := dial.dialed()
	if err != nil {
		t.Error(err)
	}
	if diff := cmp.Diff([]string{"tcp pod-ip.invalid:8080"}, addrs); diff != "" {
		t.Errorf("dialed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"pod-ip.invalid:8080"}, hosts(srv.seen())); diff != "" {
		t.Errorf("Host headers (-want +got):\n%s", diff)
	}
}

func hosts(s []seen) []string {
	var out []string
	for _, r := range s {
		out = append(out, r.Host)
	}
	return out
}

// TestNewRequest checks the request kubelet's NewRequestForHTTPGetAction
// builds, on its own test cases.
func TestNewRequest(t *testing.T) {
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}
	tests := []struct {
		name    string
		action  corev1.HTTPGetAction
		wantURL string
	}{
		{"defaults", corev1.HTTPGetAction{Port: intstr.FromInt(80)}, "http://10.0.0.5:80"},
		{"scheme lowercased", corev1.HTTPGetAction{Scheme: "HTTPS", Path: "/healthz", Port: intstr.FromString("web")}, "https://10.0.0.5:8080/healthz"},
		{"host", corev1.HTTPGetAction{Host: "fd00::1", Path: "healthz", Port: intstr.FromInt(80)}, "http://[fd00::1]:80/healthz"},
		{"query", corev1.HTTPGetAction{Path: "/q?a=b&c", Port: intstr.FromInt(80)}, "http://10.0.0.5:80/q?a=b&c"},
		{"bad path kept", corev1.HTTPGetAction{Path: "%zz", Port: intstr.FromInt(80)}, "http://10.0.0.5:80/%25zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := probe.NewRequest(&tt.action, c, "10.0.0.5", userAgent)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.String(); got != tt.wantURL {
				t.Errorf("URL = %q, want %q", got, tt.wantURL)
			}
			if _, err := url.Parse(req.URL.String()); err != nil {
				t.Errorf("URL does not parse: %v", err)
			}
		})
	}
}
