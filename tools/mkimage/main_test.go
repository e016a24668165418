package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/podboot/podboot/internal/integration"
	"github.com/podboot/podboot/tools/imagebuild"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Config
		wantErr string
	}{
		{
			name: "standins by default",
			args: []string{"-o", "out", "-arch", "arm64", "-busybox", "/bb"},
			want: Config{Arch: "arm64", Busybox: "/bb", OutDir: "out", Format: "docker", StandIns: true,
				Spec: imagebuild.Spec{Arch: "arm64", Busybox: "/bb"}},
		},
		{
			name: "one image",
			args: []string{"-o", "out", "-arch", "amd64", "-tag", "app:1", "-tag", "app:latest",
				"-entrypoint", `["/bin/sh","-c"]`, "-cmd", "echo hi", "-env", "A=b", "-port", "80",
				"-workdir", "/w", "-user", "1000", "-stop-signal", "SIGQUIT", "-format", "oci"},
			want: Config{Arch: "amd64", Busybox: "/bin/busybox", OutDir: "out", Format: "oci",
				Spec: imagebuild.Spec{
					Tags: []string{"app:1", "app:latest"}, Arch: "amd64", Busybox: "/bin/busybox",
					Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo", "hi"}, Env: []string{"A=b"},
					WorkingDir: "/w", User: "1000", StopSignal: "SIGQUIT", ExposedPorts: []string{"80"},
				}},
		},
		{name: "no output", args: []string{}, wantErr: "-o DIR is required"},
		{name: "bad format", args: []string{"-o", "x", "-format", "zip"}, wantErr: `-format "zip"`},
		{name: "both", args: []string{"-o", "x", "-standins", "-tag", "a"}, wantErr: "exclude each other"},
		{name: "bad entrypoint", args: []string{"-o", "x", "-entrypoint", "[1]"}, wantErr: "not a JSON array"},
		{name: "extra args", args: []string{"-o", "x", "y"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Arch == "" {
				tt.want.Arch = goruntime.GOARCH
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseFlags() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunStandIns(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		integration.Unavailable(t, "no /bin/busybox (apt-get install busybox-static)")
	}
	if goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64" {
		t.Skip("unsupported host architecture")
	}
	out := t.TempDir()
	cfg, err := parseFlags([]string{"-o", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	if err := run(context.Background(), cfg, &stdout); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(out, "nginx_latest.tar")
	tag, _ := name.NewTag("nginx:1.29")
	img, err := tarball.ImageFromPath(p, &tag)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.StopSignal != "SIGQUIT" {
		t.Errorf("nginx stop signal = %q, want SIGQUIT", cf.Config.StopSignal)
	}
	if n := strings.Count(stdout.String(), "\n"); n != len(imagebuild.StandIns("amd64", "")) {
		t.Errorf("printed %d archives, want one per stand-in:\n%s", n, stdout.String())
	}
}

func TestArchiveName(t *testing.T) {
	if got := ArchiveName("registry.k8s.io/busybox:1.27.2"); got != "registry.k8s.io_busybox_1.27.2.tar" {
		t.Errorf("ArchiveName() = %q", got)
	}
}
