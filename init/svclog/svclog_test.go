package svclog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFileRotates(t *testing.T) {
	dir := t.TempDir()
	l := &File{Path: filepath.Join(dir, "svc.log"), Max: 10}
	for _, s := range []string{"aaaa\n", "bbbb\n", "cccc\n", "dd\n"} {
		if _, err := l.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	cur, _ := os.ReadFile(l.Path)
	old, _ := os.ReadFile(l.Path + ".1")
	if string(cur) != "cccc\ndd\n" || string(old) != "aaaa\nbbbb\n" {
		t.Errorf("current %q, previous %q", cur, old)
	}
}

func TestPrefixer(t *testing.T) {
	var out bytes.Buffer
	p := &Prefixer{W: &out, Prefix: "[containerd] "}
	for _, s := range []string{"one\ntw", "o\n", "three"} {
		if n, err := p.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if diff := cmp.Diff("[containerd] one\n[containerd] two\n", out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	out.Reset()
	p.Write([]byte(strings.Repeat("x", maxLine+5)))
	if got := strings.Count(out.String(), "\n"); got != 1 {
		t.Errorf("an over-long line: %d lines written, want 1", got)
	}
}
