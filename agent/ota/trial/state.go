package trial

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MaxAttempts is how many times a trial may be started (across reboots)
// before it is rolled back without another start.
const MaxAttempts = 3

// The phases of State.Phase.
const (
	PhaseCommitted  = "committed"
	PhaseTrying     = "trying"
	PhaseRolledBack = "rolled-back"
)

// Failure is a generation that was rolled back: it never runs again.
type Failure struct {
	Generation uint64    `json:"generation"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// State is the truth of the OTA directory, kept in state.json. The
// `current` symlink is derived from it (Running), never the other way.
type State struct {
	Committed  uint64    `json:"committed"`          // the generation that runs when nothing is tried (0 = none)
	Previous   uint64    `json:"previous,omitempty"` // the committed one before it, kept for rollback
	HighWater  uint64    `json:"highWater"`          // highest generation ever committed (replay bar)
	Trying     uint64    `json:"trying,omitempty"`
	Attempts   int       `json:"attempts,omitempty"` // starts of the trial so far, counted before its pods start
	TrialStart time.Time `json:"trialStart,omitzero"`
	Failed     []Failure `json:"failed,omitempty"`
	Phase      string    `json:"state"`            // PhaseCommitted, PhaseTrying or PhaseRolledBack
	Reason     string    `json:"reason,omitempty"` // the last rollback's or recovery's reason
	Keys       []string  `json:"keys,omitempty"`   // rotated keys (a committed statement's NextKeys); empty = device.yaml's
	Threshold  int       `json:"threshold,omitempty"`
	// NextKeys and NextThreshold are the trial's key rotation
	// (SetNextKeys), applied to Keys and Threshold by Commit.
	NextKeys      []string `json:"nextKeys,omitempty"`
	NextThreshold int      `json:"nextThreshold,omitempty"`
}

// Running is the generation `current` points at: Trying if non-zero, else
// Committed (0 = none).
func (s State) Running() uint64 {
	if s.Trying != 0 {
		return s.Trying
	}
	return s.Committed
}

// HasFailed reports whether gen was rolled back before.
func (s State) HasFailed(gen uint64) bool {
	return slices.ContainsFunc(s.Failed, func(f Failure) bool { return f.Generation == gen })
}

// stateFile is state.json: the State and the SHA-256 of its compact JSON,
// so a flipped digit is caught as well as a torn or garbled file. It still
// decodes as a plain State.
type stateFile struct {
	State
	SHA256 string `json:"sha256"`
}

func encodeState(s State) ([]byte, error) {
	sum, err := stateSum(s)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(stateFile{State: s, SHA256: sum}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the OTA state: %w", err)
	}
	return append(b, '\n'), nil
}

var errChecksum = errors.New("checksum mismatch")

func decodeState(b []byte) (State, error) {
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return State{}, err
	}
	sum, err := stateSum(f.State)
	if err != nil {
		return State{}, err
	}
	if sum != f.SHA256 {
		return State{}, fmt.Errorf("%w: sha256 %q, content %q", errChecksum, f.SHA256, sum)
	}
	if err := f.State.validate(); err != nil {
		return State{}, err
	}
	return f.State, nil
}

func stateSum(s State) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode the OTA state: %w", err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// validate catches a state no transition writes (a bug, or a hand edit
// with a recomputed checksum).
func (s State) validate() error {
	switch {
	case s.Phase != PhaseCommitted && s.Phase != PhaseTrying && s.Phase != PhaseRolledBack:
		return fmt.Errorf("unknown state %q", s.Phase)
	case (s.Trying != 0) != (s.Phase == PhaseTrying):
		return fmt.Errorf("state %q with trying generation %d", s.Phase, s.Trying)
	case s.Attempts < 0 || s.Attempts > MaxAttempts:
		return fmt.Errorf("attempts %d out of 0..%d", s.Attempts, MaxAttempts)
	case s.Committed > s.HighWater:
		return fmt.Errorf("committed generation %d above the high water mark %d", s.Committed, s.HighWater)
	case s.Previous != 0 && s.Previous >= s.Committed:
		return fmt.Errorf("previous generation %d not below the committed %d", s.Previous, s.Committed)
	}
	return nil
}
