// Package clock keeps the board's clock from going backwards across
// boots. Most boards have no battery-backed clock and start in 1970:
// certificates would not be valid yet and logs would be out of order. At
// boot the clock is moved forward to the latest time the board is known to
// have seen (the time saved on flash, the flash's last write time); the
// time is saved every few minutes and at shutdown; NTP sets it exactly
// when a server answers.
package clock

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/ntp"
	"golang.org/x/sys/unix"
)

// Clock reads and sets the system time; a seam for tests.
type Clock interface {
	Now() time.Time
	Set(time.Time) error
}

// System is the kernel's realtime clock.
type System struct{}

func (System) Now() time.Time { return time.Now() }

// Set sets the realtime clock (settimeofday).
func (System) Set(t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("settimeofday %s: %w", t.Format(time.RFC3339), err)
	}
	return nil
}

// Parse reads a saved time: RFC 3339, or Unix seconds.
func Parse(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("saved time %q: want RFC 3339 or Unix seconds", s)
}

// Load reads the saved time at path.
func Load(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read saved time: %w", err)
	}
	t, err := Parse(string(b))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Latest returns the latest of times, zero for none.
func Latest(times ...time.Time) time.Time {
	var l time.Time
	for _, t := range times {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// Forward moves c forward to floor when it is behind, and never back. It
// returns whether it set the clock.
func Forward(c Clock, floor time.Time) (bool, error) {
	if !c.Now().Before(floor) {
		return false, nil
	}
	return true, c.Set(floor)
}

// Save writes t to path so that a power cut leaves either the old or the
// new time, never a torn file: temp file, fsync, rename, fsync the
// directory.
func Save(path string, t time.Time) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save time: %w", err)
	}
	f, err := os.CreateTemp(dir, ".clock-*")
	if err != nil {
		return fmt.Errorf("save time: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(t.UTC().Format(time.RFC3339) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("save time to %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save time to %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save time to %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save time: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save time: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save time: sync %s: %w", dir, err)
	}
	return nil
}

// SaveEvery saves c's time to path every interval until ctx ends.
func SaveEvery(ctx context.Context, c Clock, path string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := Save(path, c.Now()); err != nil {
				log.Warn("save clock", "path", path, "err", err)
			}
		}
	}
}

// Querier asks an NTP server for the clock's offset; a seam for tests.
type Querier func(server string) (time.Duration, error)

// QueryNTP asks server with beevik/ntp and checks the answer is usable
// (not a kiss-of-death, not unsynchronised).
func QueryNTP(server string) (time.Duration, error) {
	r, err := ntp.QueryWithOptions(server, ntp.QueryOptions{Timeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("ntp query %s: %w", server, err)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("ntp query %s: %w", server, err)
	}
	return r.ClockOffset, nil
}

// NTP sets c from the first of servers that answers, retrying with a
// backoff from retry up to an hour while none does, and again every resync
// after a success, until ctx ends. It never blocks the boot: run it in a
// goroutine. Offsets under a millisecond are left alone.
func NTP(ctx context.Context, c Clock, servers []string, q Querier, retry, resync time.Duration, log *slog.Logger) {
	if len(servers) == 0 {
		return
	}
	wait := retry
	for {
		var offset time.Duration
		var err error
		var server string
		for _, server = range servers {
			if offset, err = q(server); err == nil {
				break
			}
		}
		next := resync
		if err != nil {
			log.Debug("ntp: no server answered", "servers", servers, "err", err, "retry in", wait)
			next = wait
			wait = min(2*wait, time.Hour)
		} else {
			wait = retry
			if offset > time.Millisecond || offset < -time.Millisecond {
				to := c.Now().Add(offset)
				if err := c.Set(to); err != nil {
					log.Warn("ntp: set clock", "server", server, "err", err)
				} else {
					log.Info("ntp: clock set", "server", server, "offset", offset, "time", to.UTC().Format(time.RFC3339))
				}
			}
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
