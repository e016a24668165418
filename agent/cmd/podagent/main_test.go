package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
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
