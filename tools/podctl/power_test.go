package main

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// powerAgent answers the power endpoints as the agent does.
func powerAgent(requests *[]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*requests = append(*requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
			return
		}
		switch r.URL.Path {
		case "/podboot/v1/poweroff":
			w.WriteHeader(202)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","message":"powering off","code":202}`)
		case "/podboot/v1/reboot":
			w.WriteHeader(501)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"reboot is not available: power control is off (podagent --power-pid 0)","code":501}`)
		default:
			w.WriteHeader(404)
		}
	})
}

func TestPowerCommands(t *testing.T) {
	var requests []string
	srv := httptest.NewTLSServer(powerAgent(&requests))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"--server", srv.URL, "--certificate-authority", ca}
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
		wantReq string
	}{
		{name: "poweroff", args: append(base, "--token", "s3cret", "poweroff"), wantOut: "powering off\n",
			wantReq: "POST /podboot/v1/poweroff Bearer s3cret"},
		{name: "reboot not available", args: append(base, "reboot", "--token", "s3cret"),
			wantErr: "Error from server: reboot is not available: power control is off (podagent --power-pid 0)",
			wantReq: "POST /podboot/v1/reboot Bearer s3cret"},
		{name: "no token", args: append(base, "poweroff"),
			wantErr: "error: You must be logged in to the server (Unauthorized)", wantReq: "POST /podboot/v1/poweroff "},
		{name: "wrong token", args: append(base, "--token", "nope", "poweroff"),
			wantErr: "error: You must be logged in to the server (Unauthorized)", wantReq: "POST /podboot/v1/poweroff Bearer nope"},
		{name: "arguments", args: append(base, "poweroff", "now"), wantErr: `poweroff: unexpected arguments ["now"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requests = nil
			out, _, err := runPodctl(t, tc.args, nil)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			var want []string
			if tc.wantReq != "" {
				want = []string{tc.wantReq}
			}
			if diff := cmp.Diff(want, requests); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// --token replaces the kubeconfig's credentials, as in kubectl.
func TestTokenOverridesKubeconfig(t *testing.T) {
	var requests []string
	srv := httptest.NewServer(powerAgent(&requests))
	defer srv.Close()
	path := writeKubeconfig(t, t.TempDir(), "config", fmt.Sprintf(kubeconfigTemplate, "a", srv.URL, ""))
	if _, _, err := runPodctl(t, []string{"--kubeconfig", path, "--token", "s3cret", "poweroff"}, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"POST /podboot/v1/poweroff Bearer s3cret"}, requests); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestParseVsock(t *testing.T) {
	for _, tc := range []struct {
		in        string
		cid, port uint32
		wantErr   string
	}{
		{in: "1:10250", cid: 1, port: 10250},
		{in: "2:1", cid: 2, port: 1},
		{in: "4294967295:4294967295", cid: 4294967295, port: 4294967295},
		{in: "10250", wantErr: `--vsock "10250": want CID:PORT`},
		{in: "", wantErr: "want CID:PORT"},
		{in: "x:1", wantErr: `context ID "x" is not a number`},
		{in: "-1:1", wantErr: `context ID "-1" is not a number`},
		{in: "1:", wantErr: `port "" is not a number`},
		{in: "1:4294967296", wantErr: `port "4294967296" is not a number`},
		{in: "1:2:3", wantErr: `port "2:3" is not a number`},
		{in: "host:10250", wantErr: `context ID "host" is not a number`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			cid, port, err := parseVsock(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([2]uint32{tc.cid, tc.port}, [2]uint32{cid, port}); diff != "" {
				t.Errorf("CID, port (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVsockExclusive(t *testing.T) {
	for _, extra := range [][]string{{"--server", "http://x"}, {"--kubeconfig", "k"}, {"--certificate-authority", "ca"}} {
		args := append([]string{"--vsock", "1:10250", "get", "pods"}, extra...)
		_, _, err := runPodctl(t, args, nil)
		if err == nil || !strings.Contains(err.Error(), "does not go with") {
			t.Errorf("podctl %q: error %v, want a conflict", args, err)
		}
	}
	_, _, err := runPodctl(t, []string{"--vsock", "nope", "get", "pods"}, nil)
	if err == nil || !strings.Contains(err.Error(), "want CID:PORT") {
		t.Errorf("bad --vsock: %v", err)
	}
}
