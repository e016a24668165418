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
	"golang.org/x/sys/unix"
)

// correction is one step or slew asked of a fakeClock.
type correction struct {
	Kind   string // "step" or "slew"
	Offset time.Duration
}

// fakeClock is a system clock that starts at now; a step moves it, a slew
// is only recorded (the kernel would spread it over the next hour).
type fakeClock struct {
	mu          sync.Mutex
	now         time.Time
	corrections []correction
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }

func (f *fakeClock) Step(offset time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(offset)
	f.corrections = append(f.corrections, correction{"step", offset})
	return nil
}

func (f *fakeClock) Slew(offset time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corrections = append(f.corrections, correction{"slew", offset})
	return nil
}

func (f *fakeClock) Corrections() []correction {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]correction(nil), f.corrections...)
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
		n := &NTP{Clock: c, Servers: []string{"a", "b"}, Query: q, Retry: 10 * time.Second, Resync: time.Hour, Log: slog.New(slog.DiscardHandler)}
		go func() {
			n.Run(ctx)
			close(done)
		}()
		time.Sleep(31 * time.Second) // tries at 0, 10s, 30s
		synctest.Wait()
		cancel()
		<-done
		if diff := cmp.Diff([]string{"a", "b", "a", "b", "a"}, asked); diff != "" {
			t.Errorf("queries (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]correction{{"step", time.Hour}}, c.Corrections()); diff != "" {
			t.Errorf("clock corrections (-want +got):\n%s", diff)
		}
	})
}

// The clock is stepped only when it is far off (the first answer after a
// boot from the saved time, a board that was suspended), slewed otherwise,
// and never moved back past the saved time.
func TestNTPStepsOnlyLargeOffsetsAndNeverBackPastTheFloor(t *testing.T) {
	saved := time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		now     time.Time // the clock when NTP starts
		answers []time.Duration
		want    []correction
	}{
		{
			name:    "first sync after a boot steps, hourly drift is slewed",
			now:     saved,
			answers: []time.Duration{3 * time.Hour, 30 * time.Millisecond, -20 * time.Millisecond, 500 * time.Microsecond},
			want:    []correction{{"step", 3 * time.Hour}, {"slew", 30 * time.Millisecond}, {"slew", -20 * time.Millisecond}, {"slew", 500 * time.Microsecond}},
		},
		{
			name:    "small offset at the first sync is slewed",
			now:     saved.Add(time.Hour),
			answers: []time.Duration{-150 * time.Millisecond},
			want:    []correction{{"slew", -150 * time.Millisecond}},
		},
		{
			name:    "0.4 s and more is stepped, in either direction, at any sync",
			now:     saved.Add(time.Hour),
			answers: []time.Duration{time.Minute, 399 * time.Millisecond, -400 * time.Millisecond, 5 * time.Second},
			want:    []correction{{"step", time.Minute}, {"slew", 399 * time.Millisecond}, {"step", -400 * time.Millisecond}, {"step", 5 * time.Second}},
		},
		{
			name:    "never back past the saved time",
			now:     saved.Add(10 * time.Second),
			answers: []time.Duration{-time.Hour, -5 * time.Second},
			want:    []correction{{"step", -5 * time.Second}},
		},
		{
			name:    "no slew back past the saved time either",
			now:     saved.Add(100 * time.Millisecond),
			answers: []time.Duration{-300 * time.Millisecond, -50 * time.Millisecond},
			want:    []correction{{"slew", -50 * time.Millisecond}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &fakeClock{now: tc.now}
				var mu sync.Mutex
				answered := 0
				q := func(string) (time.Duration, error) {
					mu.Lock()
					defer mu.Unlock()
					if answered == len(tc.answers) {
						return 0, errors.New("no more answers")
					}
					answered++
					return tc.answers[answered-1], nil
				}
				ctx, cancel := context.WithCancel(t.Context())
				n := &NTP{Clock: c, Servers: []string{"pool"}, Query: q, Retry: time.Hour, Resync: time.Hour, Floor: saved, Log: slog.New(slog.DiscardHandler)}
				done := make(chan struct{})
				go func() {
					n.Run(ctx)
					close(done)
				}()
				time.Sleep(time.Duration(len(tc.answers)-1)*time.Hour + time.Minute) // one answer an hour
				synctest.Wait()
				cancel()
				<-done
				if diff := cmp.Diff(tc.want, c.Corrections()); diff != "" {
					t.Errorf("clock corrections (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// adjtimex wants a non-negative fraction of a second with the step, and
// the slew's offset in nanoseconds under ADJ_NANO.
func TestTimex(t *testing.T) {
	for _, tc := range []struct {
		offset   time.Duration
		wantStep unix.Timeval
	}{
		{1500 * time.Millisecond, unix.Timeval{Sec: 1, Usec: 500_000_000}},
		{-300 * time.Millisecond, unix.Timeval{Sec: -1, Usec: 700_000_000}},
		{-2 * time.Second, unix.Timeval{Sec: -2, Usec: 0}},
		{-2*time.Second - time.Nanosecond, unix.Timeval{Sec: -3, Usec: 999_999_999}},
		{56 * 365 * 24 * time.Hour, unix.Timeval{Sec: 56 * 365 * 24 * 3600, Usec: 0}},
	} {
		step := stepTimex(tc.offset)
		if step.Modes != unix.ADJ_SETOFFSET|unix.ADJ_NANO {
			t.Errorf("step %s: modes %#x, want ADJ_SETOFFSET|ADJ_NANO", tc.offset, step.Modes)
		}
		if diff := cmp.Diff(tc.wantStep, step.Time); diff != "" {
			t.Errorf("step %s: time (-want +got):\n%s", tc.offset, diff)
		}
		slew := slewTimex(tc.offset)
		if slew.Offset != int64(tc.offset) || slew.Status != unix.STA_PLL || slew.Modes&(unix.ADJ_OFFSET|unix.ADJ_NANO|unix.ADJ_STATUS) != unix.ADJ_OFFSET|unix.ADJ_NANO|unix.ADJ_STATUS {
			t.Errorf("slew %s: %+v, want ADJ_OFFSET|ADJ_NANO|ADJ_STATUS, STA_PLL, offset in ns", tc.offset, slew)
		}
	}
}

// At rest the flash is written once an hour for the clock, no more.
func TestSaveEveryAtRestHourly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), ".podboot", "clock")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			SaveEvery(ctx, System{}, path, SaveInterval, slog.New(slog.DiscardHandler)) // the bubble's fake time
			close(done)
		}()
		var saves []time.Time
		for range 3*60 + 30 {
			time.Sleep(time.Minute)
			synctest.Wait()
			got, err := Load(path)
			if err != nil {
				continue // not saved yet
			}
			if len(saves) == 0 || !got.Equal(saves[len(saves)-1]) {
				saves = append(saves, got)
			}
		}
		cancel()
		<-done
		if len(saves) != 3 {
			t.Errorf("%d clock saves in 3 hours at rest, want 3: %v", len(saves), saves)
		}
	})
}
