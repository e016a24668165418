package podnet

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podboot/podboot/internal/device"
)

func TestNew(t *testing.T) {
	good, err := Conflist(device.PodNetwork{}, "/run/podboot/cni/networks")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "good", cfg: Config{PluginDirs: []string{"/opt/cni/bin"}, Conflist: good, CacheDir: "/run/podboot/cni/cache"}},
		{name: "no plugin dirs", cfg: Config{Conflist: good, CacheDir: "/c"}, wantErr: "no CNI plugin directories"},
		{name: "no cache dir", cfg: Config{PluginDirs: []string{"/p"}, Conflist: good}, wantErr: "no CNI cache directory"},
		{name: "not json", cfg: Config{PluginDirs: []string{"/p"}, Conflist: []byte("{"), CacheDir: "/c"}, wantErr: "pod network:"},
		{name: "no plugins", cfg: Config{PluginDirs: []string{"/p"}, Conflist: []byte(`{"cniVersion":"1.0.0","name":"x","plugins":[]}`), CacheDir: "/c"}, wantErr: "no plugins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Name() != NetworkName {
				t.Errorf("Name() = %q", n.Name())
			}
		})
	}
}

// Bad input is an error naming the pod, never a panic or a plugin run.
func TestBadInput(t *testing.T) {
	conf, err := Conflist(device.PodNetwork{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{PluginDirs: []string{t.TempDir()}, Conflist: conf, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name    string
		call    func() error
		wantErr string
	}{
		{name: "setup empty uid", call: func() error { _, err := n.Setup(ctx, "", "/proc/self/ns/net"); return err }, wantErr: "empty pod UID"},
		{name: "setup no netns", call: func() error { _, err := n.Setup(ctx, "uid-1", ""); return err }, wantErr: "pod uid-1: no network namespace path"},
		{name: "setup missing netns", call: func() error { _, err := n.Setup(ctx, "uid-1", missing); return err }, wantErr: "pod uid-1: network namespace: stat"},
		{name: "check empty uid", call: func() error { return n.Check(ctx, "", "/proc/self/ns/net") }, wantErr: "empty pod UID"},
		{name: "check no netns", call: func() error { return n.Check(ctx, "uid-1", "") }, wantErr: "pod uid-1: no network namespace path"},
		{name: "teardown empty uid", call: func() error { return n.Teardown(ctx, "", missing) }, wantErr: "empty pod UID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
