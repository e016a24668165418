package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testTime = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

const testStamp = "2024-05-01T10:00:00.123456789Z"

type write struct {
	stream string
	data   string
}

func newTestWriter(t testing.TB, path string, cfg Config) *Writer {
	t.Helper()
	w, err := NewWriter(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return testTime }
	return w
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline: %q", path, b)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func line(stream, tag, text string) string {
	return testStamp + " " + stream + " " + tag + " " + text
}

// The cases follow containerd's TestRedirectLogs (internal/cri/io) with
// its 16 KiB maximum line, plus the \r\n and partial-line edges of its
// readLine.
func TestWriterLines(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	const max = MaxLineSize
	for _, tc := range []struct {
		name   string
		writes []write
		want   []string
	}{
		{"complete lines", []write{{Stdout, "test stdout log 1\ntest stdout log 2\n"}},
			[]string{line(Stdout, "F", "test stdout log 1"), line(Stdout, "F", "test stdout log 2")}},
		{"stderr", []write{{Stderr, "e1\n"}}, []string{line(Stderr, "F", "e1")}},
		{"line split across writes", []write{{Stdout, "hel"}, {Stdout, "lo\nwor"}, {Stdout, "ld\n"}},
			[]string{line(Stdout, "F", "hello"), line(Stdout, "F", "world")}},
		{"empty line", []write{{Stdout, "\n\n"}}, []string{line(Stdout, "F", ""), line(Stdout, "F", "")}},
		{"crlf dropped", []write{{Stdout, "x\r\n"}}, []string{line(Stdout, "F", "x")}},
		{"crlf split across writes", []write{{Stdout, "x\r"}, {Stdout, "\n"}}, []string{line(Stdout, "F", "x")}},
		{"lone cr kept", []write{{Stdout, "x\ry\n"}}, []string{line(Stdout, "F", "x\ry")}},
		{"ends without newline", []write{{Stderr, "test stderr log 1\ntest stderr log 2"}},
			[]string{line(Stderr, "F", "test stderr log 1"), line(Stderr, "P", "test stderr log 2")}},
		{"trailing cr at close", []write{{Stdout, "x\r"}}, []string{line(Stdout, "P", "x\r")}},
		{"equal to max", []write{{Stdout, a(max) + "\n" + a(max) + "\n"}},
			[]string{line(Stdout, "F", a(max)), line(Stdout, "F", a(max))}},
		{"max plus one", []write{{Stdout, a(max+1) + "\n"}},
			[]string{line(Stdout, "P", a(max)), line(Stdout, "F", "a")}},
		{"twice max", []write{{Stdout, a(2*max) + "\n" + a(2*max+1) + "\n"}},
			[]string{line(Stdout, "P", a(max)), line(Stdout, "F", a(max)),
				line(Stdout, "P", a(max)), line(Stdout, "P", a(max)), line(Stdout, "F", "a")}},
		{"max then crlf in two writes", []write{{Stdout, a(max) + "\r"}, {Stdout, "\n"}},
			[]string{line(Stdout, "F", a(max))}},
		{"max then cr and text", []write{{Stdout, a(max) + "\r"}, {Stdout, "X\n"}},
			[]string{line(Stdout, "P", a(max)), line(Stdout, "F", "\rX")}},
		{"long unterminated line at close", []write{{Stdout, a(max + 10)}},
			[]string{line(Stdout, "P", a(max)), line(Stdout, "P", a(10))}},
		{"interleaved streams", []write{{Stdout, "o1"}, {Stderr, "e1\n"}, {Stdout, "o2\n"}},
			[]string{line(Stderr, "F", "e1"), line(Stdout, "F", "o1o2")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c", "0.log")
			w := newTestWriter(t, path, Config{})
			for _, wr := range tc.writes {
				n, err := w.Stream(wr.stream).Write([]byte(wr.data))
				if err != nil || n != len(wr.data) {
					t.Fatalf("Write(%q) = %d, %v", wr.data, n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, readLines(t, path)); diff != "" {
				t.Errorf("file lines (-want +got):\n%s", diff)
			}
		})
	}
}

// However the container's output is cut into writes, the file is the same.
func TestWriterChunkingInvariant(t *testing.T) {
	input := "one\r\ntwo\n" + strings.Repeat("b", MaxLineSize-1) + "\r\n" + strings.Repeat("c", 3*MaxLineSize+7) + "\n\nend"
	write := func(chunk int) []string {
		path := filepath.Join(t.TempDir(), "0.log")
		w := newTestWriter(t, path, Config{MaxSize: 1 << 30})
		for s := input; len(s) > 0; {
			n := min(chunk, len(s))
			if _, err := w.Stream(Stdout).Write([]byte(s[:n])); err != nil {
				t.Fatal(err)
			}
			s = s[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return readLines(t, path)
	}
	want := write(len(input))
	for _, chunk := range []int{1, 2, 3, 7, 4096, MaxLineSize, MaxLineSize + 1} {
		if diff := cmp.Diff(want, write(chunk)); diff != "" {
			t.Errorf("writes of %d bytes (-one write +chunked):\n%s", chunk, diff)
		}
	}
}

func TestWriterAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	for _, s := range []string{"first\n", "second\n"} {
		w := newTestWriter(t, path, Config{})
		if _, err := w.Stream(Stdout).Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{line(Stdout, "F", "first"), line(Stdout, "F", "second")}
	if diff := cmp.Diff(want, readLines(t, path)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestWriterRotation(t *testing.T) {
	rec := func(i int) string { return line(Stdout, "F", fmt.Sprintf("line %02d", i)) }
	recLen := int64(len(rec(0)) + 1)
	for _, tc := range []struct {
		name     string
		maxFiles int
		lines    int
		want     map[string][]string // file suffix -> lines
	}{
		{"fits", 3, 3, map[string][]string{"": {rec(0), rec(1), rec(2)}}},
		{"one rotation", 3, 4, map[string][]string{".1": {rec(0), rec(1), rec(2)}, "": {rec(3)}}},
		{"oldest dropped", 3, 10, map[string][]string{
			".2": {rec(3), rec(4), rec(5)}, ".1": {rec(6), rec(7), rec(8)}, "": {rec(9)}}},
		{"default two files", 0, 7, map[string][]string{".1": {rec(3), rec(4), rec(5)}, "": {rec(6)}}},
		{"single file truncates", 1, 4, map[string][]string{"": {rec(3)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "0.log")
			w := newTestWriter(t, path, Config{MaxSize: 3 * recLen, MaxFiles: tc.maxFiles})
			for i := range tc.lines {
				if _, err := fmt.Fprintf(w.Stream(Stdout), "line %02d\n", i); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			des, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, de := range des {
				got[strings.TrimPrefix(de.Name(), "0.log")] = readLines(t, filepath.Join(dir, de.Name()))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// One write of many lines still rotates between lines, never inside one.
func TestWriterRotatesInsideOneWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	rec := line(Stdout, "F", "xx")
	w := newTestWriter(t, path, Config{MaxSize: int64(2 * (len(rec) + 1)), MaxFiles: 5})
	if _, err := w.Stream(Stdout).Write([]byte(strings.Repeat("xx\n", 5))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for suffix, n := range map[string]int{".2": 2, ".1": 2, "": 1} {
		if diff := cmp.Diff(slicesRepeat(rec, n), readLines(t, path+suffix)); diff != "" {
			t.Errorf("0.log%s (-want +got):\n%s", suffix, diff)
		}
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestWriterConcurrentStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	w := newTestWriter(t, path, Config{MaxSize: 1 << 30})
	const n = 2000
	var wg sync.WaitGroup
	for _, s := range []string{Stdout, Stderr} {
		wg.Go(func() {
			for i := range n {
				fmt.Fprintf(w.Stream(s), "%s %d\n", s, i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	for _, l := range readLines(t, path) {
		cl, err := parseCRILine([]byte(l))
		if err != nil {
			t.Fatalf("corrupt line %q: %v", l, err)
		}
		if want := fmt.Sprintf("%s %d", cl.stream, next[cl.stream]); string(cl.text) != want {
			t.Fatalf("line %q, want text %q", l, want)
		}
		next[cl.stream]++
	}
	if diff := cmp.Diff(map[string]int{Stdout: n, Stderr: n}, next); diff != "" {
		t.Errorf("lines per stream (-want +got):\n%s", diff)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewWriter(filepath.Join(dir, "0.log"), Config{MaxSize: -1}); err == nil {
		t.Error("NewWriter with a negative MaxSize: no error")
	}
	if _, err := NewWriter(filepath.Join(dir, "0.log"), Config{MaxFiles: -1}); err == nil {
		t.Error("NewWriter with negative MaxFiles: no error")
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(filepath.Join(file, "0.log"), Config{}); err == nil {
		t.Error("NewWriter under a regular file: no error")
	}
	w := newTestWriter(t, filepath.Join(dir, "0.log"), Config{})
	if _, err := w.Stream("stdin").Write([]byte("x\n")); err == nil || !strings.Contains(err.Error(), `"stdin"`) {
		t.Errorf("write to stream stdin: error %v, want one naming the stream", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Stream(Stdout).Write([]byte("late\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Close: error %v, want os.ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, size := range []int{80, 1024} {
		b.Run(fmt.Sprintf("line%d", size), func(b *testing.B) {
			w, err := NewWriter(filepath.Join(b.TempDir(), "0.log"), DefaultConfig())
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			// 4 KiB writes, as a pipe copy delivers them.
			chunk := []byte(strings.Repeat(strings.Repeat("x", size-1)+"\n", max(1, 4096/size)))
			b.SetBytes(int64(len(chunk)))
			out := w.Stream(Stdout)
			for b.Loop() {
				if _, err := out.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
