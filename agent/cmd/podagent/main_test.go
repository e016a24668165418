package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/logs"
)

func TestAutoBool(t *testing.T) {
	dir := t.TempDir()
	board := filepath.Join(dir, "board")
	if err := os.WriteFile(board, []byte("qemu-arm64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		path    string
		args    []string
		want    bool
		wantErr bool
	}{
		{name: "auto on a board", path: board, want: true},
		{name: "auto on a host", path: missing, want: false},
		{name: "bare flag", path: missing, args: []string{"--device-listeners"}, want: true},
		{name: "=true", path: missing, args: []string{"--device-listeners=true"}, want: true},
		{name: "=false on a board", path: board, args: []string{"--device-listeners=false"}, want: false},
		{name: "=auto", path: board, args: []string{"--device-listeners=auto"}, want: true},
		{name: "=0", path: board, args: []string{"--device-listeners=0"}, want: false},
		{name: "bad", path: board, args: []string{"--device-listeners=maybe"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("podagent", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			v := autoBool{path: tt.path}
			fs.Var(&v, "device-listeners", "")
			err := fs.Parse(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parse %q: %v", tt.args, err)
			}
			if err == nil && v.value() != tt.want {
				t.Errorf("%q with %s: %v, want %v", tt.args, filepath.Base(tt.path), v.value(), tt.want)
			}
		})
	}
}

func TestLogFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    logs.Config
		wantErr bool
	}{
		// Not given: zero, so device.yaml's logs section applies.
		{name: "none", want: logs.Config{}},
		{name: "all", args: []string{"--container-log-max-size=10Mi", "--container-log-max-files=5", "--container-log-max-total=128Mi"},
			want: logs.Config{MaxSize: 10 << 20, MaxFiles: 5, MaxTotal: 128 << 20}},
		{name: "one", args: []string{"--container-log-max-size", "512Ki"}, want: logs.Config{MaxSize: 512 << 10}},
		{name: "plain bytes", args: []string{"--container-log-max-total=1000000"}, want: logs.Config{MaxTotal: 1000000}},
		{name: "bad quantity", args: []string{"--container-log-max-size=big"}, wantErr: true},
		{name: "zero size", args: []string{"--container-log-max-size=0"}, wantErr: true},
		{name: "negative total", args: []string{"--container-log-max-total=-1Mi"}, wantErr: true},
		{name: "one file", args: []string{"--container-log-max-files=1"}, wantErr: true},
		{name: "files not a number", args: []string{"--container-log-max-files=two"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("podagent", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var got logs.Config
			logFlags(fs, &got)
			err := fs.Parse(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parse %q: %v", tt.args, err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parse %q (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
