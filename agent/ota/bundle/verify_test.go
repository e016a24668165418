package bundle

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVerify(t *testing.T) {
	k1, k2, k3, k4 := testKey(1), testKey(2), testKey(3), testKey(4)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	base := Policy{Keys: []ed25519.PublicKey{pub(k1)}, Channel: "stable", Committed: 3, AgentVersion: "v0.13.0", Now: now, ClockTrusted: true}
	three := base
	three.Keys = []ed25519.PublicKey{pub(k1), pub(k2), pub(k3)}
	three.Threshold = 2
	with := func(p Policy, edit func(*Policy)) Policy { edit(&p); return p }
	stmt := func(gen uint64, edit func(*Statement)) *Statement {
		st := testStatement(gen)
		if edit != nil {
			edit(st)
		}
		return st
	}
	expires := func(d time.Duration) func(*Statement) {
		return func(s *Statement) { e := now.Add(d); s.Expires = &e }
	}
	good := mustSign(t, stmt(4, nil), k1)

	tests := []struct {
		name     string
		policy   Policy
		envelope []byte
		want     *Statement // when accepted
		reason   string
		message  string
	}{
		{name: "accepted", policy: base, envelope: good, want: stmt(4, nil)},
		{name: "any channel", policy: with(base, func(p *Policy) { p.Channel = "" }), envelope: mustSign(t, stmt(4, func(s *Statement) { s.Channel = "beta" }), k1), want: stmt(4, func(s *Statement) { s.Channel = "beta" })},
		{
			name: "unknown key", policy: base, envelope: mustSign(t, stmt(4, nil), k2),
			reason:  ReasonUnknownKey,
			message: fmt.Sprintf(`bundle generation 4 refused: it is signed only by keys this board does not trust (key ID %q); device.yaml ota.keys lists the trusted ones (unknown key)`, id(k2)),
		},
		{
			name: "no trusted keys at all", policy: with(base, func(p *Policy) { p.Keys = nil }), envelope: good,
			reason:  ReasonUnknownKey,
			message: fmt.Sprintf(`bundle generation 4 refused: it is signed only by keys this board does not trust (key ID %q); device.yaml ota.keys lists the trusted ones (unknown key)`, id(k1)),
		},
		{
			name: "bad signature", policy: base,
			envelope: editEnvelope(t, good, func(e *Envelope) { e.Signatures[0].Sig[0] ^= 1 }),
			reason:   ReasonBadSignature,
			message:  fmt.Sprintf(`bundle generation 4 refused: the signature by trusted key %q does not match the statement (altered after signing, or signed by another key with the same ID) (bad signature)`, id(k1)),
		},
		{
			name: "tampered statement", policy: base,
			envelope: editEnvelope(t, good, func(e *Envelope) {
				st := testStatement(9) // the signatures are over generation 4
				payload, err := json.Marshal(st)
				if err != nil {
					t.Fatal(err)
				}
				e.Payload = payload
			}),
			reason:  ReasonBadSignature,
			message: fmt.Sprintf(`bundle generation 9 refused: the signature by trusted key %q does not match the statement (altered after signing, or signed by another key with the same ID) (bad signature)`, id(k1)),
		},
		{
			name: "signature of another payload type", policy: base,
			envelope: editEnvelope(t, good, func(e *Envelope) { e.PayloadType = "application/vnd.in-toto+json" }),
			reason:   ReasonMalformed,
			message:  `bundle generation 4 refused: the envelope's payload type is "application/vnd.in-toto+json", want "application/vnd.podboot.ota.statement.v1+json" (malformed)`,
		},
		{
			name: "unsigned", policy: base,
			envelope: editEnvelope(t, good, func(e *Envelope) { e.Signatures = nil }),
			reason:   ReasonNotEnoughSignatures,
			message:  `bundle generation 4 refused: it carries no signature (not enough signatures)`,
		},
		{
			name: "threshold 2 of 3, one signer", policy: three, envelope: mustSign(t, stmt(4, nil), k1),
			reason:  ReasonNotEnoughSignatures,
			message: `bundle generation 4 refused: it is signed by 1 trusted key(s) and this board requires 2 (not enough signatures)`,
		},
		{
			name: "threshold 2 of 3, one key signed twice", policy: three, envelope: mustSign(t, stmt(4, nil), k1, k1),
			reason:  ReasonNotEnoughSignatures,
			message: `bundle generation 4 refused: it is signed by 1 trusted key(s) and this board requires 2 (not enough signatures)`,
		},
		{
			name: "threshold 2 of 3, one trusted and one unknown signer", policy: three, envelope: mustSign(t, stmt(4, nil), k1, k4),
			reason:  ReasonNotEnoughSignatures,
			message: `bundle generation 4 refused: it is signed by 1 trusted key(s) and this board requires 2 (not enough signatures)`,
		},
		{name: "threshold 2 of 3, two signers", policy: three, envelope: mustSign(t, stmt(4, nil), k3, k1), want: stmt(4, nil)},
		{
			name: "one valid and one bad signature, threshold 1", policy: with(three, func(p *Policy) { p.Threshold = 0 }),
			envelope: editEnvelope(t, mustSign(t, stmt(4, nil), k1, k2), func(e *Envelope) { e.Signatures[1].Sig[5] ^= 0x80 }),
			want:     stmt(4, nil),
		},
		{
			name: "channel mismatch", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.Channel = "beta" }), k1),
			reason:  ReasonChannel,
			message: `bundle generation 4 refused: it is for channel "beta" and this board follows channel "stable" (channel mismatch)`,
		},
		{
			name: "no channel when the board follows one", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.Channel = "" }), k1),
			reason:  ReasonChannel,
			message: `bundle generation 4 refused: it names no channel and this board follows channel "stable" (channel mismatch)`,
		},
		{
			name: "replay of an older generation", policy: with(base, func(p *Policy) { p.Committed = 5 }), envelope: good,
			reason:  ReasonReplay,
			message: `bundle generation 4 refused: generation 4 is not newer than the committed generation 5 (replay)`,
		},
		{
			name: "replay of the committed generation", policy: with(base, func(p *Policy) { p.Committed = 4 }), envelope: good,
			reason:  ReasonReplay,
			message: `bundle generation 4 refused: generation 4 is not newer than the committed generation 4 (replay)`,
		},
		{
			name: "failed before", policy: with(base, func(p *Policy) { p.Failed = []uint64{2, 4} }), envelope: good,
			reason:  ReasonFailedBefore,
			message: `bundle generation 4 refused: generation 4 failed on this board before and is never retried; publish a new generation (failed before)`,
		},
		{
			name: "agent too old", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.MinAgentVersion = "v0.14.0" }), k1),
			reason:  ReasonAgentTooOld,
			message: `bundle generation 4 refused: it needs agent v0.14.0 or newer and this board runs v0.13.0 (agent too old)`,
		},
		{
			name: "agent newer than needed", policy: with(base, func(p *Policy) { p.AgentVersion = "v0.13.1" }),
			envelope: mustSign(t, stmt(4, func(s *Statement) { s.MinAgentVersion = "v0.13.0" }), k1), want: stmt(4, nil),
		},
		{
			name: "malformed minimum agent version", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.MinAgentVersion = "0.14" }), k1),
			reason:  ReasonMalformed,
			message: `bundle generation 4 refused: the minimum agent version "0.14" is not a semantic version like v0.13.0 (malformed)`,
		},
		{
			name: "expired with a trusted clock", policy: base, envelope: mustSign(t, stmt(4, expires(-time.Hour)), k1),
			reason:  ReasonExpired,
			message: `bundle generation 4 refused: it expired at 2026-12-07T11:00:00Z and the board's clock says 2026-12-07T12:00:00Z (expired)`,
		},
		{
			name: "expired but the clock is not trusted (1970 after boot)", policy: with(base, func(p *Policy) { p.ClockTrusted = false; p.Now = time.Unix(0, 0) }),
			envelope: mustSign(t, stmt(4, expires(-time.Hour)), k1), want: stmt(4, expires(-time.Hour)),
		},
		{
			name: "expired by a clock that is not trusted (an RTC far ahead)", policy: with(base, func(p *Policy) { p.ClockTrusted = false; p.Now = now.AddDate(1, 0, 0) }),
			envelope: mustSign(t, stmt(4, expires(time.Hour)), k1), want: stmt(4, expires(time.Hour)),
		},
		{name: "not expired yet", policy: base, envelope: mustSign(t, stmt(4, expires(time.Hour)), k1), want: stmt(4, expires(time.Hour))},
		{
			name: "not JSON", policy: base, envelope: []byte("PK\x03\x04"),
			reason:  ReasonMalformed,
			message: `bundle refused: the statement envelope is not DSSE JSON: invalid character 'P' looking for beginning of value (malformed)`,
		},
		{
			name: "generation 0", policy: base, envelope: mustSign(t, stmt(0, nil), k1),
			reason:  ReasonMalformed,
			message: `bundle refused: the statement has no generation (it must be 1 or more) (malformed)`,
		},
		{
			name: "no pods layer", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.Layers = s.Layers[1:] }), k1),
			reason:  ReasonMalformed,
			message: `bundle generation 4 refused: the statement's first layer must be the pods layer "pods.tar" (application/vnd.podboot.ota.pods.v1.tar) (malformed)`,
		},
		{
			name: "image name with a path", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.Layers[1].Name = "../app.tar" }), k1),
			reason:  ReasonMalformed,
			message: `bundle generation 4 refused: the statement's layer 1 has name "../app.tar", want an archive name of [A-Za-z0-9._-] ending in .tar (malformed)`,
		},
		{
			name: "bad next key", policy: base, envelope: mustSign(t, stmt(4, func(s *Statement) { s.NextKeys = []string{"ed25519:AAAA"} }), k1),
			reason:  ReasonMalformed,
			message: `bundle generation 4 refused: the statement's next keys: parse public key "ed25519:AAAA": 3 bytes, want 32 (malformed)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := tt.policy.Verify(tt.envelope)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if diff := cmp.Diff(tt.want, st); diff != "" {
					t.Errorf("statement (-want +got):\n%s", diff)
				}
				return
			}
			if st != nil {
				t.Errorf("Verify returned a statement with refusal %v", err)
			}
			r := asRefusal(t, err)
			if diff := cmp.Diff(&Refusal{Reason: tt.reason, Message: tt.message}, r); diff != "" {
				t.Errorf("refusal (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	k1 := testKey(1)
	good := mustSign(f, testStatement(4), k1)
	f.Add(good)
	f.Add(mustSign(f, testStatement(4), k1, testKey(2)))
	f.Add([]byte(`{"payloadType":"application/vnd.podboot.ota.statement.v1+json","payload":"e30=","signatures":[{"keyid":"","sig":""}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	p := Policy{Keys: []ed25519.PublicKey{pub(k1), pub(testKey(2))}, Committed: 2, AgentVersion: "v0.13.0", ClockTrusted: true, Now: testIssued}
	f.Fuzz(func(t *testing.T, envelope []byte) {
		st, err := p.Verify(envelope)
		if err != nil {
			r := asRefusal(t, err)
			if reasonWords[r.Reason] == "" || r.Message == "" {
				t.Fatalf("refusal %#v has an unknown reason or no message", r)
			}
			return
		}
		if st == nil || st.Generation <= p.Committed || len(st.Layers) == 0 {
			t.Fatalf("accepted statement %+v breaks the policy", st)
		}
	})
}
