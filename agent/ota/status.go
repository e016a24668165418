package ota

// Status is `podctl ota status -o json` and GET /podboot/v1/ota.
type Status struct {
	// Generation is the committed generation (0: none yet).
	Generation uint64 `json:"generation"`
	// State is "committed", "trying" or "rolled-back".
	State string `json:"state"`
	// Trying is the generation on trial.
	Trying uint64 `json:"trying,omitempty"`
	// Failed lists the generations that failed: never retried.
	Failed []uint64 `json:"failed"`
	// Reason is the last rollback's or refusal's message.
	Reason string `json:"reason,omitempty"`
	// Attempts counts the starts of the trial (at most MaxAttempts).
	Attempts int    `json:"attempts,omitempty"`
	Source   string `json:"source,omitempty"`
}

// Status is the state now.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked()
}

func (c *Controller) statusLocked() Status {
	st := c.machine.State()
	s := Status{
		Generation: st.Committed,
		State:      st.Phase,
		Trying:     st.Trying,
		Failed:     []uint64{},
		Reason:     c.reason,
		Source:     c.cfg.Device.Source,
	}
	if s.State == "" {
		s.State = phaseCommitted
	}
	if st.Trying != 0 {
		s.State = phaseTrying
		s.Attempts = st.Attempts
	}
	for _, f := range st.Failed {
		s.Failed = append(s.Failed, f.Generation)
	}
	return s
}

const (
	phaseCommitted = "committed"
	phaseTrying    = "trying"
)
