package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/mod/semver"

	"github.com/podboot/podboot/internal/version"
)

// Refusal is every reason a bundle is refused; Reason is one of the
// Reason constants, Message says in an operator's words which generation
// was refused and why.
type Refusal struct{ Reason, Message string }

func (r *Refusal) Error() string { return r.Message }

// Reasons of a Refusal.
const (
	ReasonUnknownKey          = "UnknownKey"
	ReasonBadSignature        = "BadSignature"
	ReasonNotEnoughSignatures = "NotEnoughSignatures"
	ReasonReplay              = "Replay"
	ReasonFailedBefore        = "FailedBefore"
	ReasonAgentTooOld         = "AgentTooOld"
	ReasonExpired             = "Expired"
	ReasonChannel             = "ChannelMismatch"
	ReasonLayerMismatch       = "LayerMismatch"
	ReasonTruncated           = "Truncated"
	ReasonMalformed           = "Malformed"
)

// maxSignatures bounds the ed25519 verifications one envelope can cost.
const maxSignatures = 32

// reasonWords is how a message ends: the reason as words, so an operator
// reading only the message still sees the category.
var reasonWords = map[string]string{
	ReasonUnknownKey:          "unknown key",
	ReasonBadSignature:        "bad signature",
	ReasonNotEnoughSignatures: "not enough signatures",
	ReasonReplay:              "replay",
	ReasonFailedBefore:        "failed before",
	ReasonAgentTooOld:         "agent too old",
	ReasonExpired:             "expired",
	ReasonChannel:             "channel mismatch",
	ReasonLayerMismatch:       "layer mismatch",
	ReasonTruncated:           "truncated",
	ReasonMalformed:           "malformed",
}

// refuse builds a Refusal for generation gen (0 when it is not known).
func refuse(gen uint64, reason, format string, args ...any) *Refusal {
	subject := "bundle"
	if gen != 0 {
		subject = fmt.Sprintf("bundle generation %d", gen)
	}
	return &Refusal{
		Reason:  reason,
		Message: fmt.Sprintf("%s refused: %s (%s)", subject, fmt.Sprintf(format, args...), reasonWords[reason]),
	}
}

// Policy is what a board accepts.
type Policy struct {
	Keys         []ed25519.PublicKey
	Threshold    int       // distinct trusted keys with a valid signature needed; 0 = 1
	Channel      string    // "" = any
	Committed    uint64    // the highest generation ever committed: a statement at or below it is a Replay
	Failed       []uint64  // generations that failed before: FailedBefore
	AgentVersion string    // "" = version.Version
	Now          time.Time // compared with Expires
	ClockTrusted bool      // Expires is checked only when true: a board without an RTC boots in 1970
}

// Verify checks envelope against the policy and returns its statement, or a
// *Refusal. The order is: the envelope decodes (Malformed), enough distinct
// trusted keys signed it (UnknownKey, BadSignature, NotEnoughSignatures),
// only then is the statement decoded and checked (Malformed), then the
// channel, replay, failed-before, agent version and, with a trusted clock,
// expiry.
func (p Policy) Verify(envelope []byte) (*Statement, error) {
	if len(envelope) > MaxEnvelopeSize {
		return nil, refuse(0, ReasonMalformed, "the statement envelope is %d bytes, more than the %d allowed", len(envelope), MaxEnvelopeSize)
	}
	var env Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, refuse(0, ReasonMalformed, "the statement envelope is not DSSE JSON: %v", err)
	}
	// The generation in signature refusals comes from the unverified
	// payload: it only helps the operator find the bundle, nothing trusts it.
	gen := unverifiedGeneration(env.Payload)
	if env.PayloadType != PayloadType {
		return nil, refuse(gen, ReasonMalformed, "the envelope's payload type is %q, want %q", env.PayloadType, PayloadType)
	}
	if len(env.Signatures) > maxSignatures {
		return nil, refuse(gen, ReasonMalformed, "the envelope has %d signatures, at most %d are allowed", len(env.Signatures), maxSignatures)
	}
	if err := p.checkSignatures(gen, &env); err != nil {
		return nil, err
	}

	st, err := decodeStatement(env.Payload)
	if err != nil {
		return nil, refuse(gen, ReasonMalformed, "%v", err)
	}
	gen = st.Generation
	if p.Channel != "" && st.Channel != p.Channel {
		if st.Channel == "" {
			return nil, refuse(gen, ReasonChannel, "it names no channel and this board follows channel %q", p.Channel)
		}
		return nil, refuse(gen, ReasonChannel, "it is for channel %q and this board follows channel %q", st.Channel, p.Channel)
	}
	if gen <= p.Committed {
		return nil, refuse(gen, ReasonReplay, "generation %d is not newer than the committed generation %d", gen, p.Committed)
	}
	if slices.Contains(p.Failed, gen) {
		return nil, refuse(gen, ReasonFailedBefore, "generation %d failed on this board before and is never retried; publish a new generation", gen)
	}
	if st.MinAgentVersion != "" {
		agent := p.AgentVersion
		if agent == "" {
			agent = version.Version
		}
		if !semver.IsValid(agent) {
			return nil, refuse(gen, ReasonMalformed, "this agent's version %q is not a semantic version, so the bundle's minimum agent version %s cannot be checked", agent, st.MinAgentVersion)
		}
		if semver.Compare(agent, st.MinAgentVersion) < 0 {
			return nil, refuse(gen, ReasonAgentTooOld, "it needs agent %s or newer and this board runs %s", st.MinAgentVersion, agent)
		}
	}
	if p.ClockTrusted && st.Expires != nil && !p.Now.Before(*st.Expires) {
		return nil, refuse(gen, ReasonExpired, "it expired at %s and the board's clock says %s", st.Expires.UTC().Format(time.RFC3339), p.Now.UTC().Format(time.RFC3339))
	}
	return st, nil
}

// checkSignatures counts the distinct trusted keys with a valid signature.
func (p Policy) checkSignatures(gen uint64, env *Envelope) error {
	byID := map[string][]ed25519.PublicKey{}
	for _, k := range p.Keys {
		if len(k) == ed25519.PublicKeySize {
			byID[KeyID(k)] = append(byID[KeyID(k)], k)
		}
	}
	msg := pae(env.PayloadType, env.Payload)
	valid := map[string]bool{} // by FormatPublicKey: two signatures by one key count once
	var unknown, bad []string
	for _, s := range env.Signatures {
		candidates := byID[s.KeyID]
		if len(candidates) == 0 {
			unknown = append(unknown, s.KeyID)
			continue
		}
		ok := false
		for _, k := range candidates {
			if ed25519.Verify(k, msg, s.Sig) {
				valid[FormatPublicKey(k)] = true
				ok = true
			}
		}
		if !ok {
			bad = append(bad, s.KeyID)
		}
	}
	threshold := max(p.Threshold, 1)
	switch {
	case len(valid) >= threshold:
		return nil
	case len(valid) == 0 && len(bad) > 0:
		return refuse(gen, ReasonBadSignature, "the signature by trusted key %s does not match the statement (altered after signing, or signed by another key with the same ID)", quoteIDs(bad))
	case len(valid) == 0 && len(unknown) > 0:
		return refuse(gen, ReasonUnknownKey, "it is signed only by keys this board does not trust (key ID %s); device.yaml ota.keys lists the trusted ones", quoteIDs(unknown))
	case len(env.Signatures) == 0:
		return refuse(gen, ReasonNotEnoughSignatures, "it carries no signature")
	default:
		return refuse(gen, ReasonNotEnoughSignatures, "it is signed by %d trusted key(s) and this board requires %d", len(valid), threshold)
	}
}

func quoteIDs(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ", ")
}

func unverifiedGeneration(payload []byte) uint64 {
	var g struct {
		Generation uint64 `json:"generation"`
	}
	if json.Unmarshal(payload, &g) != nil {
		return 0
	}
	return g.Generation
}

// decodeStatement decodes and checks a signed payload. Unknown fields are
// allowed: a newer builder may add some, and MinAgentVersion is how a
// bundle says an older agent must not run it.
func decodeStatement(payload []byte) (*Statement, error) {
	var st Statement
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("the statement is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("the statement has trailing data")
	}
	if st.Generation == 0 {
		return nil, fmt.Errorf("the statement has no generation (it must be 1 or more)")
	}
	if st.MinAgentVersion != "" && !semver.IsValid(st.MinAgentVersion) {
		return nil, fmt.Errorf("the minimum agent version %q is not a semantic version like v0.13.0", st.MinAgentVersion)
	}
	if err := checkLayers(st.Layers); err != nil {
		return nil, err
	}
	for _, k := range st.NextKeys {
		if _, err := ParsePublicKey(k); err != nil {
			return nil, fmt.Errorf("the statement's next keys: %v", err)
		}
	}
	if st.NextThreshold < 0 || st.NextThreshold > len(st.NextKeys) {
		return nil, fmt.Errorf("the next threshold %d is not between 0 and the %d next keys", st.NextThreshold, len(st.NextKeys))
	}
	return &st, nil
}

// checkLayers: the pods layer first and only once, then image archives,
// each with a sha256 digest and a file name unique in the bundle.
func checkLayers(layers []Layer) error {
	if len(layers) == 0 || layers[0].MediaType != MediaTypePods || layers[0].Name != PodsLayerName {
		return fmt.Errorf("the statement's first layer must be the pods layer %q (%s)", PodsLayerName, MediaTypePods)
	}
	names := map[string]bool{}
	for i, l := range layers {
		if i > 0 {
			if l.MediaType != MediaTypeImage {
				return fmt.Errorf("the statement's layer %d has media type %q, want %q", i, l.MediaType, MediaTypeImage)
			}
			if !strings.HasSuffix(l.Name, ".tar") || !validName(l.Name) {
				return fmt.Errorf("the statement's layer %d has name %q, want an archive name of [A-Za-z0-9._-] ending in .tar", i, l.Name)
			}
		}
		if names[l.Name] {
			return fmt.Errorf("the statement names layer %q twice", l.Name)
		}
		names[l.Name] = true
		d, err := digest.Parse(l.Digest)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return fmt.Errorf("the statement's layer %q has digest %q, want sha256:<64 hex>", l.Name, l.Digest)
		}
		if l.Size < 0 {
			return fmt.Errorf("the statement's layer %q has a negative size %d", l.Name, l.Size)
		}
	}
	return nil
}

// validName is a file name a bundle may create: [A-Za-z0-9._-], not "." or
// "..", so it can never leave its directory nor be hidden.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".") || len(name) > 255 {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
