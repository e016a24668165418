package backoff

import (
	"fmt"
	"time"
)

// Entry is one key's saved backoff.
type Entry struct {
	Backoff    string    `json:"backoff"` // a Go duration, e.g. "40s"
	LastUpdate time.Time `json:"lastUpdate"`
}

// State is a Backoff's entries, keyed like the Backoff, for saving in the
// agent's state file.
type State map[string]Entry

// Export returns a copy of every entry.
func (b *Backoff) Export() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := make(State, len(b.entries))
	for k, e := range b.entries {
		s[k] = Entry{Backoff: e.backoff.String(), LastUpdate: e.lastUpdate}
	}
	return s
}

// Restore replaces every entry with s. An entry that does not parse is an
// error and nothing is changed.
func (b *Backoff) Restore(s State) error {
	entries := make(map[string]entry, len(s))
	for k, e := range s {
		d, err := time.ParseDuration(e.Backoff)
		if err != nil {
			return fmt.Errorf("restore backoff %q: %w", k, err)
		}
		if d <= 0 {
			return fmt.Errorf("restore backoff %q: duration %s is not positive", k, d)
		}
		entries[k] = entry{backoff: min(d, b.max), lastUpdate: e.LastUpdate}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries = entries
	return nil
}
