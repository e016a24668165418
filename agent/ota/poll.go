package ota

import (
	"context"
	"errors"
	"time"

	"github.com/podboot/podboot/agent/ota/bundle"
	"github.com/podboot/podboot/agent/ota/source"
)

// pollTimeout bounds one poll: resolving the tag and downloading what it
// names. A download cut short resumes at the next poll.
const pollTimeout = 30 * time.Minute

// pollOnce resolves the source's tag and takes what it names when that
// is new. An unreachable registry changes nothing: the board keeps its
// committed generation and, when the registry is back, goes straight to
// whatever the tag names then.
func (c *Controller) pollOnce(ctx context.Context, reg source.Source) {
	if c.Status().State == phaseTrying {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	desc, err := reg.Resolve(ctx)
	c.mu.Lock()
	wasDown := c.sourceDown
	c.sourceDown = err != nil
	c.mu.Unlock()
	if err != nil {
		// Said once when it goes away (an offline board, a stick pulled
		// out), not every poll.
		log := c.cfg.Log.Info
		if wasDown {
			log = c.cfg.Log.Debug
		}
		log("OTA source not reachable; the running generation stays", "source", c.cfg.Device.Source, "err", err)
		return
	}
	if wasDown {
		c.cfg.Log.Info("OTA source reachable again", "source", c.cfg.Device.Source)
	}
	c.mu.Lock()
	seen := c.seen == desc.Digest.String()
	c.mu.Unlock()
	if seen {
		return
	}
	err = c.take(ctx, reg.Storage(), desc, "from "+c.cfg.Device.Source, true)
	if err != nil && transient(err) {
		// Tried again next poll (a cut download resumes).
		return
	}
	c.mu.Lock()
	c.seen = desc.Digest.String()
	c.mu.Unlock()
	if r, ok := reg.(*source.Registry); ok {
		// The generation is on the flash now; its downloads are not needed.
		if perr := r.Prune(); perr != nil {
			c.cfg.Log.Warn("prune the OTA download cache", "err", perr)
		}
	}
}

// transient says whether a failed take may succeed when simply tried
// again: a download cut short, a registry gone mid-way, a full flash, a
// trial running. A bundle refused for what it is (its signature, its
// generation, a collision) is not looked at again until the tag moves.
func transient(err error) bool {
	var r *bundle.Refusal
	if errors.As(err, &r) {
		return r.Reason == bundle.ReasonTruncated
	}
	var collision *CollisionError
	var invalid *InvalidManifestError
	return !errors.As(err, &collision) && !errors.As(err, &invalid)
}
