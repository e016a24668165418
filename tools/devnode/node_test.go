package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/init/containerd"
)

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3:1", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"192.168.1.10:8080", false},
		{"[::]:8080", false},
		{"example.com:80", false},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
	} {
		err := checkLoopback(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.addr) {
			t.Errorf("checkLoopback(%q) error %q does not name the address", tc.addr, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--flash", "f", "--state", "s", "--listen", "127.0.0.1:1", "--bin", "b",
		"--cgroup-parent", "a", "--cgroup-parent", "b/c", "--agent-stop-timeout", "3s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{FlashDir: "f", StateDir: "s", Listen: "127.0.0.1:1", BinDir: "b",
		CgroupParents: []string{"a", "b/c"}, AgentStopTimeout: 3 * time.Second, ReadyTimeout: defaultReadyTimeout}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if cfg.BinDir != filepath.Dir(exe) {
		t.Errorf("default --bin %q, want the executable's directory %q", cfg.BinDir, filepath.Dir(exe))
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("an extra argument: no error")
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestValidate(t *testing.T) {
	bin := t.TempDir()
	flash := t.TempDir()
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "podagent"} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	good := Config{FlashDir: flash, StateDir: t.TempDir(), Listen: "127.0.0.1:1", BinDir: bin}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no flash", func(c *Config) { c.FlashDir = "" }, "required"},
		{"public listen", func(c *Config) { c.Listen = "0.0.0.0:80" }, "not a loopback address"},
		{"missing flash", func(c *Config) { c.FlashDir = filepath.Join(flash, "nope") }, "nope"},
		{"missing binary", func(c *Config) { c.BinDir = flash }, filepath.Join(flash, "containerd")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			if err := c.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c := good
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.NodeName == "" || c.AgentStopTimeout != defaultAgentStopTimeout || !cmp.Equal(c.CgroupParents, []string{"podboot"}) {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// buildFakes builds testdata/fakenode as containerd and podagent into a
// new bin directory, with empty stand-ins for the shim and runc, and
// optionally devnode itself.
func buildFakes(t *testing.T, withDevnode bool) string {
	t.Helper()
	bin := t.TempDir()
	build := func(out, pkg string) {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	build(filepath.Join(bin, "containerd"), "./testdata/fakenode")
	if err := os.Link(filepath.Join(bin, "containerd"), filepath.Join(bin, "podagent")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"containerd-shim-runc-v2", "runc"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if withDevnode {
		build(filepath.Join(bin, "devnode"), ".")
	}
	return bin
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// readyWriter reports when "ready" is written.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.buf.String() == "ready\n" {
		close(w.ready)
	}
	return len(p), nil
}

func TestRunWithFakes(t *testing.T) {
	bin := buildFakes(t, false)
	flash, state := t.TempDir(), t.TempDir()
	listen := freeLoopbackAddr(t)
	ready := &readyWriter{ready: make(chan struct{})}
	cfg := Config{FlashDir: flash, StateDir: state, Listen: listen, BinDir: bin, NodeName: "node-1",
		ReadyTimeout: 30 * time.Second, Ready: ready, ServiceOutput: os.Stderr,
		CgroupParents: []string{"podboot-devnode-test-none"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, discardLog()) }()
	select {
	case <-ready.ready:
	case err := <-done:
		t.Fatalf("run ended before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30s")
	}
	layout := containerd.Layout{Dir: filepath.Join(state, "containerd")}
	args, err := os.ReadFile(filepath.Join(state, "agent.args"))
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"--flash", flash, "--state", state, "--containerd", layout.Address(),
		"--runc", filepath.Join(bin, "runc"), "--runc-root", layout.RuncRoot(), "--listen", listen, "--node-name", "node-1",
		"--cgroup-root", defaultCgroupRoot(state)}
	if diff := cmp.Diff(wantArgs, strings.Fields(string(args))); diff != "" {
		t.Errorf("podagent arguments (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "agent.stopped")); err != nil {
		t.Errorf("the agent was not stopped with SIGTERM: %v", err)
	}
	if c, err := net.Dial("unix", layout.Address()); err == nil {
		c.Close()
		t.Error("containerd still answers after power-off")
	}
}

func TestRunNotHealthy(t *testing.T) {
	bin := buildFakes(t, false)
	// A podagent that never serves: the listen address is taken.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
		}
	}()
	cfg := Config{FlashDir: t.TempDir(), StateDir: t.TempDir(), Listen: l.Addr().String(), BinDir: bin,
		ReadyTimeout: 2 * time.Second, ServiceOutput: io.Discard, CgroupParents: []string{"podboot-devnode-test-none"}}
	err = run(context.Background(), cfg, discardLog())
	if err == nil || !strings.Contains(err.Error(), "/healthz") {
		t.Errorf("run: %v, want a health check error", err)
	}
}

// The binary: "ready" on stdout, SIGTERM powers off, exit 0; the agent gets
// SIGTERM and, when it ignores it, SIGKILL after --agent-stop-timeout.
func TestDevnodeBinary(t *testing.T) {
	bin := buildFakes(t, true)
	for _, tc := range []struct {
		name          string
		ignoreSIGTERM bool
	}{
		{"graceful", false},
		{"agent ignores SIGTERM", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flash, state := t.TempDir(), t.TempDir()
			if tc.ignoreSIGTERM {
				if err := os.WriteFile(filepath.Join(flash, "ignore-sigterm"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(filepath.Join(bin, "devnode"), "--flash", flash, "--state", state,
				"--listen", freeLoopbackAddr(t), "--agent-stop-timeout", "1s", "--cgroup-parent", "podboot-devnode-test-none")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("stdout %q (%v), want ready; stderr:\n%s", line, err, stderr.String())
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(stdout)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("devnode: %v; stderr:\n%s", err, stderr.String())
			}
			if len(rest) > 0 {
				t.Errorf("more on stdout after ready: %q", rest)
			}
			_, err = os.Stat(filepath.Join(state, "agent.stopped"))
			if stopped := err == nil; stopped == tc.ignoreSIGTERM {
				t.Errorf("agent.stopped exists: %v, want %v", stopped, !tc.ignoreSIGTERM)
			}
			if tc.ignoreSIGTERM && !strings.Contains(stderr.String(), "service did not stop in time") {
				t.Errorf("no kill of the agent logged; stderr:\n%s", stderr.String())
			}
		})
	}
	// A public address is refused before anything starts.
	out, err := exec.Command(filepath.Join(bin, "devnode"), "--flash", t.TempDir(), "--state", t.TempDir(),
		"--listen", "0.0.0.0:8080").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address") {
		t.Errorf("devnode --listen 0.0.0.0:8080: %v\n%s", err, out)
	}
}

func TestAgentArgsPodNetwork(t *testing.T) {
	layout := containerd.Layout{Dir: "/s/containerd"}
	base := Config{FlashDir: "/f", StateDir: "/s", Listen: "127.0.0.1:1", BinDir: "/b", NodeName: "n", CgroupRoot: "/r"}
	common := []string{"--flash", "/f", "--state", "/s", "--containerd", layout.Address(), "--runc", "/b/runc",
		"--runc-root", layout.RuncRoot(), "--listen", "127.0.0.1:1", "--node-name", "n", "--cgroup-root", "/r"}
	tests := []struct {
		name       string
		cni, resol string
		want       []string
	}{
		{name: "loopback only", want: common},
		{name: "pod network", cni: "/b/cni", want: append(slices.Clone(common), "--cni-bin-dir", "/b/cni")},
		{name: "pod network and resolver", cni: "/b/cni", resol: "/n/resolv.conf",
			want: append(slices.Clone(common), "--cni-bin-dir", "/b/cni", "--resolv-conf", "/n/resolv.conf")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.CNIBinDir, cfg.ResolvConf = tt.cni, tt.resol
			if diff := cmp.Diff(tt.want, agentArgs(cfg, layout)); diff != "" {
				t.Errorf("podagent arguments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBestEffortOutput: a reader that has gone (a broken pipe) costs the
// services their log lines, never their writes.
func TestBestEffortOutput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	n, err := bestEffort{w}.Write([]byte("line\n"))
	if n != 5 || err != nil {
		t.Errorf("Write to a broken pipe = %d, %v; want 5, nil", n, err)
	}
	w.Close()
}
