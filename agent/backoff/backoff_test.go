package backoff

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// crashLoop replays kubelet's doBackOff for a container that runs for `ran`
// and crashes, n times: it returns the backoff in force at each crash and
// the delay before the restart that followed it.
func crashLoop(b *Backoff, key string, n int, ran time.Duration) (delays []time.Duration) {
	now := t0
	for range n {
		now = now.Add(ran) // the container runs, then exits
		finished := now
		if b.IsInBackOffSince(key, finished, now) {
			// The worker waits until the backoff since finishedAt ends.
			now = finished.Add(b.Get(key))
			if b.IsInBackOffSince(key, finished, now) {
				panic("still in backoff at its end")
			}
		}
		delays = append(delays, now.Sub(finished))
		b.Next(key, finished, now)
	}
	return delays
}

func TestCrashLoopDelays(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		ran  time.Duration
		n    int
		want []time.Duration
	}{
		{"first restart is immediate, then doubling to the cap", time.Second, 9,
			[]time.Duration{0, 10 * s, 20 * s, 40 * s, 80 * s, 160 * s, 300 * s, 300 * s, 300 * s}},
		{"runs of exactly 10 min do not reset", 600 * s, 3,
			// lastUpdate is the restart; finishedAt-lastUpdate = 600 s is not > 600 s.
			[]time.Duration{0, 10 * s, 20 * s}},
		{"runs longer than 10 min reset every time", 601 * s, 3,
			[]time.Duration{0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := crashLoop(NewDefault(), "k", tt.n, tt.ran)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResetAfterCleanRun(t *testing.T) {
	b := NewDefault()
	// Crash three times quickly: backoff is at 40s.
	crashLoop(b, "k", 3, time.Second)
	if got := b.Get("k"); got != 40*time.Second {
		t.Fatalf("Get = %v, want 40s", got)
	}
	last := b.LastUpdate("k")
	tests := []struct {
		name        string
		ran         time.Duration
		wantBackoff bool
		wantNext    time.Duration
	}{
		{"crash after 9 min: still backing off, doubles", 9 * time.Minute, true, 80 * time.Second},
		{"crash after 10 min: still backing off, doubles", 10 * time.Minute, true, 80 * time.Second},
		{"crash after 10 min 1 s: expired, back to 10s", 10*time.Minute + time.Second, false, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(DefaultInitial, DefaultMax, DefaultExpiry)
			if err := c.Restore(b.Export()); err != nil {
				t.Fatal(err)
			}
			finished := last.Add(tt.ran)
			if got := c.IsInBackOffSince("k", finished, finished); got != tt.wantBackoff {
				t.Errorf("IsInBackOffSince = %v, want %v", got, tt.wantBackoff)
			}
			c.Next("k", finished, finished)
			if got := c.Get("k"); got != tt.wantNext {
				t.Errorf("after Next, Get = %v, want %v", got, tt.wantNext)
			}
		})
	}
}

func TestIsInBackOffSince(t *testing.T) {
	b := NewDefault()
	b.Next("k", t0, t0) // 10s
	tests := []struct {
		name  string
		event time.Time
		now   time.Time
		want  bool
	}{
		{"unknown key", t0, t0, false},
		{"just after the event", t0, t0.Add(time.Second), true},
		{"one ns before the end", t0, t0.Add(10*time.Second - 1), true},
		{"at the end (strict <)", t0, t0.Add(10 * time.Second), false},
		{"event long after the last update: expired", t0.Add(11 * time.Minute), t0.Add(11 * time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "k"
			if tt.name == "unknown key" {
				key = "other"
			}
			if got := b.IsInBackOffSince(key, tt.event, tt.now); got != tt.want {
				t.Errorf("IsInBackOffSince = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestImagePullBackoff(t *testing.T) {
	b := NewDefault()
	key := ImageKey("uid", "busybox")
	now := t0
	var waits []time.Duration
	for range 7 {
		// A pull fails at now; the next attempt is allowed once
		// IsInBackOffSinceUpdate turns false.
		b.Next(key, now, now)
		start := now
		for b.IsInBackOffSinceUpdate(key, now) {
			now = now.Add(time.Second)
		}
		waits = append(waits, now.Sub(start))
	}
	s := time.Second
	want := []time.Duration{10 * s, 20 * s, 40 * s, 80 * s, 160 * s, 300 * s, 300 * s}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

func TestGC(t *testing.T) {
	b := NewDefault()
	b.Next("old", t0, t0)
	b.Next("new", t0.Add(5*time.Minute), t0.Add(5*time.Minute))
	b.GC(t0.Add(10*time.Minute + time.Second))
	if got := b.Export(); len(got) != 1 || got["new"].Backoff != "10s" {
		t.Errorf("after GC: %v, want only new", got)
	}
	b.Reset("new")
	if b.Len() != 0 {
		t.Errorf("after Reset: %d entries, want 0", b.Len())
	}
}

func TestStateRoundTrip(t *testing.T) {
	b := NewDefault()
	crashLoop(b, "a", 3, time.Second)
	b.Next("b", t0, t0)
	c := NewDefault()
	if err := c.Restore(b.Export()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b.Export(), c.Export()); diff != "" {
		t.Errorf("restored state (-want +got):\n%s", diff)
	}
}

func TestRestoreRejectsBadEntries(t *testing.T) {
	tests := []struct {
		name  string
		state State
	}{
		{"unparsable", State{"k": {Backoff: "ten seconds"}}},
		{"negative", State{"k": {Backoff: "-10s"}}},
		{"zero", State{"k": {Backoff: "0s"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewDefault()
			b.Next("keep", t0, t0)
			if err := b.Restore(tt.state); err == nil {
				t.Fatal("Restore succeeded, want an error")
			}
			if b.Get("keep") != 10*time.Second {
				t.Error("a failed Restore changed the entries")
			}
		})
	}
}
