// Package clock keeps the board's clock from going backwards across
// boots. Most boards have no battery-backed clock and start in 1970:
// certificates would not be valid yet and logs would be out of order. At
// boot the clock is moved forward to the latest time the board is known to
// have seen (the time saved on flash, the flash's last write time); the
// time is saved hourly and at shutdown. NTP steps it when it is far off
// and slews it otherwise, and never takes it back past the saved time.
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

	"github.com/podboot/podboot/internal/atomicfile"
)

// Clock reads and corrects the system time; a seam for tests.
type Clock interface {
	Now() time.Time
	// Step moves the clock by offset at once.
	Step(offset time.Duration) error
	// Slew has the clock run slightly fast or slow until it has gained
	// offset, so that it never jumps and never runs backwards.
	Slew(offset time.Duration) error
}

// System is the kernel's realtime clock, corrected through adjtimex(2).
type System struct{}

func (System) Now() time.Time { return time.Now() }

// Step moves the realtime clock by offset (ADJ_SETOFFSET). The kernel
// drops any slew still under way and marks the clock unsynchronised until
// the next slew: a step also serves the boot's move to the saved time,
// which is no sync.
func (System) Step(offset time.Duration) error {
	tx := stepTimex(offset)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex: step clock by %s: %w", offset, err)
	}
	return nil
}

// Slew hands offset to the kernel's phase-locked loop (ADJ_OFFSET in
// STA_PLL mode), which corrects it gradually and tunes the clock's
// frequency from successive offsets, as systemd-timesyncd and ntpd do.
func (System) Slew(offset time.Duration) error {
	tx := slewTimex(offset)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex: slew clock by %s: %w", offset, err)
	}
	return nil
}

// pllTimeConstant is the kernel PLL's time constant for slews: the
// kernel's maximum (MAXTC), where ntpd (log2 of its poll interval) and
// timesyncd (poll interval / 16) also land for polls of 1024 s and more;
// ours are an hour apart. The PLL then corrects an offset with a time
// constant of about 4096 s.
const pllTimeConstant = 10

// slewTimex is timesyncd's slew: nanosecond offset, PLL mode (which also
// clears STA_UNSYNC: the kernel then keeps a battery-backed RTC, where
// there is one, in step every 11 minutes), error estimates reset.
func slewTimex(offset time.Duration) unix.Timex {
	return unix.Timex{
		Modes:    unix.ADJ_OFFSET | unix.ADJ_NANO | unix.ADJ_STATUS | unix.ADJ_TIMECONST | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR,
		Status:   unix.STA_PLL,
		Offset:   int64(offset),
		Constant: pllTimeConstant,
	}
}

// stepTimex is a relative step (ADJ_SETOFFSET) in nanoseconds; the kernel
// wants a non-negative fraction, so -0.3 s is {-1 s, 700000000 ns}.
func stepTimex(offset time.Duration) unix.Timex {
	sec, nsec := int64(offset/time.Second), int64(offset%time.Second)
	if nsec < 0 {
		sec--
		nsec += int64(time.Second)
	}
	return unix.Timex{
		Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO,
		Time:  unix.Timeval{Sec: sec, Usec: nsec}, // Usec holds nanoseconds with ADJ_NANO
	}
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
	now := c.Now()
	if !now.Before(floor) {
		return false, nil
	}
	return true, c.Step(floor.Sub(now))
}

// Save writes t to path so that a power cut leaves either the old or the
// new time, never a torn file (internal/atomicfile).
func Save(path string, t time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save time: %w", err)
	}
	if err := atomicfile.Write(path, []byte(t.UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("save time: %w", err)
	}
	return nil
}

// SaveInterval is how often the running board saves its time: once an
// hour is the only write a board at rest makes to its flash. The saved time
// is a floor, not the time: after a power cut the board restarts at most an
// hour behind, still past every certificate's start, and NTP steps it.
const SaveInterval = time.Hour

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

// NTP keeps a Clock on the time of the first of Servers that answers.
type NTP struct {
	Clock   Clock
	Servers []string
	Query   Querier
	// Retry is the wait after no server answered; it doubles up to an
	// hour while none does.
	Retry time.Duration
	// Resync is the wait after an answer.
	Resync time.Duration
	// Floor is the latest time the board is known to have seen (the
	// saved time the boot restored).
	Floor time.Time
	Log   *slog.Logger
}

// Run asks the servers until ctx ends. It never blocks the boot: run it
// in a goroutine.
func (n *NTP) Run(ctx context.Context) {
	if len(n.Servers) == 0 {
		return
	}
	wait := n.Retry
	for {
		var offset time.Duration
		var err error
		var server string
		for _, server = range n.Servers {
			if offset, err = n.Query(server); err == nil {
				break
			}
		}
		next := n.Resync
		if err != nil {
			n.Log.Debug("ntp: no server answered", "servers", n.Servers, "err", err, "retry in", wait)
			next = wait
			wait = min(2*wait, time.Hour)
		} else {
			wait = n.Retry
			n.correct(server, offset)
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

// StepThreshold is the offset from which an answer steps the clock
// instead of slewing it: systemd-timesyncd's (NTP_MAX_ADJUST), under the
// 0.5 s the kernel's PLL accepts. Hourly drift is far below it (a 50 ppm
// crystal drifts 0.18 s an hour); a board that booted far from the right
// time, was suspended, or whose clock was moved is above it.
const StepThreshold = 400 * time.Millisecond

// correct applies one answer's offset: a slew when it is small, a step
// when it is large (the first answer after a boot from the saved time is
// usually hours or days), and nothing that would take the clock back past
// the floor: a time before one the board has already seen is a wrong
// answer (a bad server, a forged reply), not a correction.
func (n *NTP) correct(server string, offset time.Duration) {
	to := n.Clock.Now().Add(offset)
	if to.Before(n.Floor) {
		n.Log.Warn("ntp: answer is before the saved time; clock left alone", "server", server,
			"offset", offset, "time", to.UTC().Format(time.RFC3339), "saved", n.Floor.UTC().Format(time.RFC3339))
		return
	}
	if offset < StepThreshold && offset > -StepThreshold {
		if err := n.Clock.Slew(offset); err != nil {
			n.Log.Warn("ntp: slew clock", "server", server, "offset", offset, "err", err)
			return
		}
		n.Log.Debug("ntp: clock slewed", "server", server, "offset", offset)
		return
	}
	if err := n.Clock.Step(offset); err != nil {
		n.Log.Warn("ntp: step clock", "server", server, "offset", offset, "err", err)
		return
	}
	n.Log.Info("ntp: clock stepped", "server", server, "offset", offset, "time", to.UTC().Format(time.RFC3339))
}
