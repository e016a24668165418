package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// startEtcd runs the stand-in on 127.0.0.1:<random port> with health
// (PODBOOT_GRPC_HEALTH's value) until the test ends; it returns the
// address and the data directory.
func startEtcd(t *testing.T, health string) (string, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dataDir := filepath.Join(t.TempDir(), "etcd")
	// The docs' example's flags, on a free port.
	cfg, err := parseConfig([]string{
		"--data-dir", dataDir, "--listen-client-urls", "http://" + addr,
		"--advertise-client-urls", "http://" + addr, "--log-level", "debug",
	}, health, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	// Serving once the port answers.
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd stand-in does not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr, dataDir
}

// TestHealthCheck asks with grpc-go's health client, as kubelet's gRPC
// probe does.
func TestHealthCheck(t *testing.T) {
	type answer struct {
		Status healthpb.HealthCheckResponse_ServingStatus
		Code   codes.Code
		Msg    string
	}
	tests := []struct {
		name    string
		health  string
		service string
		want    answer
	}{
		{"default server", "", "", answer{Status: healthpb.HealthCheckResponse_SERVING}},
		{"default unknown service", "", "etcd", answer{Code: codes.NotFound, Msg: "unknown service"}},
		{"not serving", "NOT_SERVING", "", answer{Status: healthpb.HealthCheckResponse_NOT_SERVING}},
		{"unknown status", "UNKNOWN", "", answer{Status: healthpb.HealthCheckResponse_UNKNOWN}},
		{"named service", "SERVING,db=NOT_SERVING", "db", answer{Status: healthpb.HealthCheckResponse_NOT_SERVING}},
		{"named only", "db=SERVING", "", answer{Code: codes.NotFound, Msg: "unknown service"}},
		{"odd service name", "a%b é=SERVING", "a%b é", answer{Status: healthpb.HealthCheckResponse_SERVING}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := startEtcd(t, tt.health)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: tt.service})
			st, _ := status.FromError(err)
			got := answer{Status: resp.GetStatus(), Code: st.Code(), Msg: st.Message()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check(%q) with %s=%q (-want +got):\n%s", tt.service, healthEnv, tt.health, diff)
			}
		})
	}
}

func TestHealthWatchAndOtherMethods(t *testing.T) {
	addr, _ := startEtcd(t, "")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := healthpb.NewHealthClient(conn)

	for service, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"":     healthpb.HealthCheckResponse_SERVING,
		"nope": healthpb.HealthCheckResponse_SERVICE_UNKNOWN,
	} {
		wctx, wcancel := context.WithCancel(ctx)
		stream, err := client.Watch(wctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil || resp.GetStatus() != want {
			t.Errorf("Watch(%q) first answer = %v, %v; want %v", service, resp.GetStatus(), err, want)
		}
		wcancel()
	}

	_, err = client.List(ctx, &healthpb.HealthListRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented || st.Message() != "unknown method List for service grpc.health.v1.Health" {
		t.Errorf("List() = %v, want Unimplemented: unknown method", err)
	}
	err = conn.Invoke(ctx, "/etcdserverpb.KV/Range", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if st, _ := status.FromError(err); st.Code() != codes.Unimplemented || st.Message() != "unknown service etcdserverpb.KV" {
		t.Errorf("KV/Range = %v, want Unimplemented: unknown service", err)
	}
}

func TestHTTPEndpointsAndDataDir(t *testing.T) {
	addr, dataDir := startEtcd(t, "")
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir %s: %v, %v; want a 0700 directory", dataDir, fi, err)
	}
	for path, want := range map[string]string{
		"/health":  `{"health":"true","reason":""}`,
		"/version": `{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}`,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, b, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		health  string
		want    Config
		wantErr string
	}{
		{
			name: "the docs' example",
			args: []string{"--data-dir", "/var/lib/etcd", "--listen-client-urls", "http://0.0.0.0:2379",
				"--advertise-client-urls", "http://127.0.0.1:2379", "--log-level", "debug"},
			want: Config{Name: "default", DataDir: "/var/lib/etcd", ClientAddrs: []string{"0.0.0.0:2379"},
				AdvertiseAddrs: []string{"127.0.0.1:2379"}, LogLevel: slog.LevelDebug, Health: map[string]servingStatus{"": serving}},
		},
		{
			name: "defaults, kubeadm's flags, equals signs",
			args: []string{"--name=node1", "--listen-client-urls=http://127.0.0.1:2379,http://10.0.0.1:2379",
				"--initial-cluster=node1=https://10.0.0.1:2380", "--client-cert-auth=true", "--snapshot-count=10000"},
			health: "NOT_SERVING, x=UNKNOWN",
			want: Config{Name: "node1", DataDir: "node1.etcd", ClientAddrs: []string{"127.0.0.1:2379", "10.0.0.1:2379"},
				AdvertiseAddrs: []string{"localhost:2379"}, LogLevel: slog.LevelInfo,
				Health: map[string]servingStatus{"": notServing, "x": unknown}},
		},
		{name: "unknown flag", args: []string{"--frobnicate=1"}, wantErr: "flag provided but not defined: -frobnicate"},
		{name: "positional", args: []string{"serve"}, wantErr: `"serve" is not a valid flag`},
		{name: "https", args: []string{"--listen-client-urls", "https://0.0.0.0:2379"}, wantErr: "serves http only"},
		{name: "no port", args: []string{"--listen-client-urls", "http://0.0.0.0"}, wantErr: "missing port"},
		{name: "log level", args: []string{"--log-level", "loud"}, wantErr: `--log-level "loud"`},
		{name: "health", health: "SERVING,db=GREEN", wantErr: `PODBOOT_GRPC_HEALTH entry "db=GREEN"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, tt.health, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseConfig() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseConfig() (-want +got):\n%s", diff)
			}
		})
	}
}
