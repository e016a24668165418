package logs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The expectations are kubelet's (kuberuntime/logs.ReadLogs) where
// podboot follows it, and say where it deliberately does not: P chunks
// are joined into one logical line stamped with its first chunk's time,
// and --tail counts logical lines across the rotated files.
func TestRead(t *testing.T) {
	const sample = "testdata/sample.log"
	const rotated = "testdata/rotated/0.log"
	all := "line one\nerr one\nerr two\npart-a part-b part-c\ntagged\noffset zone\n\nunfinished"
	for _, tc := range []struct {
		name string
		path string
		opts ReadOptions
		want string
	}{
		{"all", sample, ReadOptions{TailLines: -1}, all},
		{"tail larger than log", sample, ReadOptions{TailLines: 100}, all},
		{"tail 2", sample, ReadOptions{TailLines: 2}, "\nunfinished"},
		{"tail 4 counts logical lines", sample, ReadOptions{TailLines: 4}, "tagged\noffset zone\n\nunfinished"},
		{"tail 0", sample, ReadOptions{TailLines: 0}, ""},
		{"timestamps", sample, ReadOptions{TailLines: -1, Timestamps: true},
			"2016-10-06T00:17:09.669794202Z line one\n" +
				"2016-10-06T00:17:09.669794203Z err one\n" +
				"2016-10-06T00:17:10.100000000Z err two\n" +
				"2016-10-06T00:17:10.000000000Z part-a part-b part-c\n" +
				"2016-10-06T00:17:11.000000000Z tagged\n" +
				"2016-10-06T00:17:12.500000000+02:00 offset zone\n" +
				"2016-10-06T00:17:14.000000000Z \n" +
				"2016-10-06T00:17:15.000000000Z unfinished"},
		{"since", sample, ReadOptions{TailLines: -1, SinceTime: time.Date(2016, 10, 6, 0, 17, 10, 100000000, time.UTC)},
			"err two\ntagged\n\nunfinished"},
		{"tail then since", sample, ReadOptions{TailLines: 3, SinceTime: time.Date(2016, 10, 6, 0, 17, 14, 0, time.UTC)},
			"\nunfinished"},
		{"limit bytes cuts a line", sample, ReadOptions{TailLines: -1, LimitBytes: 12}, "line one\nerr"},
		{"limit bytes counts timestamps", sample, ReadOptions{TailLines: -1, LimitBytes: 35, Timestamps: true},
			"2016-10-06T00:17:09.669794202Z line"},
		{"limit larger than log", sample, ReadOptions{TailLines: -1, LimitBytes: 1 << 20}, all},
		{"rotated oldest first, chunks joined across files", rotated, ReadOptions{TailLines: -1},
			"one\ntwo\nthree\nfour\nfive\n"},
		{"tail across rotated files", rotated, ReadOptions{TailLines: 3}, "three\nfour\nfive\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Read(context.Background(), tc.path, tc.opts, &out); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.log")
	err := Read(context.Background(), missing, ReadOptions{TailLines: -1}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), missing) || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Read of a missing file: %v, want a not-exist error naming it", err)
	}
	err = Read(context.Background(), "testdata/sample.log", ReadOptions{TailLines: -1}, failWriter{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Read into a failing writer: %v, want its error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk on fire") }

// The writer and the reader agree: what goes in comes out, across
// rotations, with long lines joined again.
func TestWriteThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c", "1.log")
	w := newTestWriter(t, path, Config{MaxSize: 64 << 10, MaxFiles: 100})
	var want strings.Builder
	for i := range 50 {
		l := fmt.Sprintf("line %d %s\n", i, strings.Repeat("z", i*1000))
		want.WriteString(l)
		if _, err := w.Stream(Stdout).Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("no rotation happened: %v", err)
	}
	var out bytes.Buffer
	if err := Read(context.Background(), path, ReadOptions{TailLines: -1}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Errorf("read back %d bytes, want the %d written", out.Len(), want.Len())
	}
}

// syncBuffer is written by Read's goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond: the follower reacts to inotify events, on a real
// file system, so there is no fake clock to advance.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollow(t *testing.T) {
	rec := len(line(Stdout, "F", "line 00")) + 1

	for _, tc := range []struct {
		name  string
		opts  ReadOptions
		first string
	}{
		{"from the start", ReadOptions{Follow: true, TailLines: -1}, "old 1\nold 2\n"},
		{"tail 1", ReadOptions{Follow: true, TailLines: 1}, "old 2\n"},
		{"tail 0", ReadOptions{Follow: true, TailLines: 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each subtest starts on a fresh log.
			path := filepath.Join(t.TempDir(), "0.log")
			w := newTestWriter(t, path, Config{MaxSize: int64(3 * rec), MaxFiles: 2})
			defer w.Close()
			fmt.Fprint(w.Stream(Stdout), "old 1\nold 2\n")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out syncBuffer
			done := make(chan error, 1)
			following := make(chan struct{})
			go func() { done <- read(ctx, path, tc.opts, &out, func() { close(following) }) }()
			<-following
			if diff := cmp.Diff(tc.first, out.String()); diff != "" {
				t.Fatalf("existing lines (-want +got):\n%s", diff)
			}

			// Ten lines rotate the file three times; with MaxFiles 2 the
			// reader must keep up through its open file.
			var want strings.Builder
			want.WriteString(tc.first)
			for i := range 10 {
				fmt.Fprintf(w.Stream(Stdout), "line %02d\n", i)
				fmt.Fprintf(&want, "line %02d\n", i)
				waitFor(t, fmt.Sprintf("line %02d", i), func() bool { return out.String() == want.String() })
			}
			// A line in pieces is printed once it is whole.
			fmt.Fprint(w.Stream(Stderr), "hal")
			fmt.Fprint(w.Stream(Stderr), "f\n")
			want.WriteString("half\n")
			waitFor(t, "the joined line", func() bool { return out.String() == want.String() })

			cancel()
			if err := <-done; err != nil {
				t.Errorf("Read after cancel: %v", err)
			}
			if diff := cmp.Diff(want.String(), out.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

// A follower that starts in the middle of a line written by another
// writer (not through Writer) waits for its end.
func TestFollowIncompleteLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte("2016-10-06T00:00:01Z stdout F a\n2016-10-06T00:00:02Z stdout F b"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Read(ctx, path, ReadOptions{Follow: true, TailLines: -1}, &out) }()
	waitFor(t, "line a", func() bool { return out.String() == "a\n" })
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("c\n")
	f.Close()
	waitFor(t, "line bc", func() bool { return out.String() == "a\nbc\n" })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Read after cancel: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	sample, err := os.ReadFile("testdata/sample.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample, int64(-1), int64(0))
	f.Add([]byte("2016-10-06T00:00:01Z stdout P x\n\n\n \n  \n"), int64(2), int64(3))
	f.Fuzz(func(t *testing.T, data []byte, tail, limit int64) {
		path := filepath.Join(t.TempDir(), "0.log")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tail = tail % 1000
		var out bytes.Buffer
		if err := Read(context.Background(), path, ReadOptions{TailLines: tail, LimitBytes: limit, Timestamps: true}, &out); err != nil {
			t.Fatalf("Read: %v", err)
		}
		if limit > 0 && int64(out.Len()) > limit {
			t.Errorf("wrote %d bytes, limit %d", out.Len(), limit)
		}
	})
}
