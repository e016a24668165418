package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLiveness(t *testing.T) {
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type answer struct {
		Code     int
		Body     string
		Location string
	}
	tests := []struct {
		name    string
		path    string
		elapsed time.Duration
		want    answer
	}{
		{"healthy at start", "/healthz", 0, answer{Code: 200, Body: "ok"}},
		{"healthy at 10 s", "/healthz", 10 * time.Second, answer{Code: 200, Body: "ok"}},
		{"unhealthy after 10 s", "/healthz", 10*time.Second + 500*time.Millisecond, answer{Code: 500, Body: "error: 10.5"}},
		{"unhealthy later", "/healthz", 42 * time.Second, answer{Code: 500, Body: "error: 42"}},
		{"started", "/started", 1500 * time.Millisecond, answer{Code: 200, Body: "1.5s"}},
		{"redirect", "/redirect?loc=%2Fhealthz", 0, answer{Code: 302, Body: "<a href=\"/healthz\">Found</a>.\n\n", Location: "/healthz"}},
		{"redirect elsewhere", "/redirect?loc=http%3A%2F%2Fexample.com%2F", 0, answer{Code: 302, Body: "<a href=\"http://example.com/\">Found</a>.\n\n", Location: "http://example.com/"}},
		{"unknown path", "/nothing", 0, answer{Code: 404, Body: "404 page not found\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := livenessHandler(started, func() time.Time { return started.Add(tt.elapsed) })
			req := httptest.NewRequest("GET", tt.path, nil)
			req.Header.Set("Custom-Header", "Awesome")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := answer{Code: rec.Code, Body: rec.Body.String(), Location: rec.Header().Get("Location")}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GET %s at %v (-want +got):\n%s", tt.path, tt.elapsed, diff)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"netexec"}, `unknown command "netexec"`},
		{[]string{"liveness", "extra"}, `liveness: unexpected arguments ["extra"]`},
		{[]string{"serve-hostname", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"liveness", "--port=1"}, "flag provided but not defined: -port"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(tt.args, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestServeHostname(t *testing.T) {
	const name = "pod-a"
	srv := httptest.NewServer(hostnameHandler(name))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != name {
		t.Errorf("GET = %d %q, want 200 %q", resp.StatusCode, b, name)
	}
}
