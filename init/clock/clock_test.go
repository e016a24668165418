package clock

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a system clock that starts at now.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	sets []time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeClock) Set(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	f.sets = append(f.sets, t)
	return nil
}

func TestParse(t *testing.T) {
	want := time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC)
	for _, in := range []string{"2026-11-24T19:00:00Z\n", "1795546800", " 2026-11-24T20:00:00+01:00 "} {
		got, err := Parse(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := Parse("yesterday"); err == nil || !strings.Contains(err.Error(), `"yesterday"`) {
		t.Errorf("Parse(yesterday): %v", err)
	}
}

// The clock only ever moves forward.
func TestForwardNeverBackwards(t *testing.T) {
	saved := time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		now     time.Time
		floor   time.Time
		wantSet bool
		want    time.Time
	}{
		{"1970 boot goes forward", time.Unix(5, 0), saved, true, saved},
		{"ahead stays", saved.Add(time.Hour), saved, false, saved.Add(time.Hour)},
		{"equal stays", saved, saved, false, saved},
		{"no floor", time.Unix(5, 0), time.Time{}, false, time.Unix(5, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{now: tc.now}
			set, err := Forward(c, tc.floor)
			if err != nil {
				t.Fatal(err)
			}
			if set != tc.wantSet || !c.Now().Equal(tc.want) {
				t.Errorf("Forward: set=%v now=%v; want set=%v now=%v", set, c.Now(), tc.wantSet, tc.want)
			}
		})
	}
}

func TestLatest(t *testing.T) {
	a, b := time.Unix(100, 0), time.Unix(200, 0)
	if got := Latest(a, time.Time{}, b); !got.Equal(b) {
		t.Errorf("Latest = %v, want %v", got, b)
	}
	if got := Latest(); !got.IsZero() {
		t.Errorf("Latest() = %v, want zero", got)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".podboot", "clock")
	now := time.Date(2026, 11, 24, 19, 30, 12, 0, time.UTC)
	if err := Save(path, now); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || !got.Equal(now.Add(time.Minute)) {
		t.Errorf("Load = %v, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("Load of a missing file: no error")
	}
}

func TestNTPRetriesThenSets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		c := &fakeClock{now: start}
		var mu sync.Mutex
		var asked []string
		answers := 0
		q := func(server string) (time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, server)
			answers++
			if answers <= 4 { // two rounds of both servers fail: no network yet
				return 0, errors.New("network is unreachable")
			}
			return time.Hour, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			NTP(ctx, c, []string{"a", "b"}, q, 10*time.Second, time.Hour, slog.New(slog.DiscardHandler))
			close(done)
		}()
		time.Sleep(31 * time.Second) // tries at 0, 10s, 30s
		synctest.Wait()
		cancel()
		<-done
		if diff := cmp.Diff([]string{"a", "b", "a", "b", "a"}, asked); diff != "" {
			t.Errorf("queries (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]time.Time{start.Add(time.Hour)}, c.sets); diff != "" {
			t.Errorf("clock sets (-want +got):\n%s", diff)
		}
	})
}
