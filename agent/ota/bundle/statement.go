package bundle

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Media types of a bundle.
const (
	ArtifactType      = "application/vnd.podboot.ota.bundle.v1"
	MediaTypeEnvelope = "application/vnd.podboot.ota.statement.v1+json" // the manifest's config: Envelope JSON
	MediaTypePods     = "application/vnd.podboot.ota.pods.v1.tar"       // one layer: tar of the pods dir's *.yaml/*.yml/*.json (flat, regular files only)
	MediaTypeImage    = "application/vnd.podboot.ota.image.v1.tar"      // one layer per image archive (OCI or docker archive), title = file name
	PayloadType       = "application/vnd.podboot.ota.statement.v1+json" // DSSE payloadType
)

// Statement is what the fleet's keys sign: which generation this is, for
// whom, and the digest and size of every layer, so that a signature over
// the statement covers every byte the board will run.
type Statement struct {
	Fleet           string     `json:"fleet,omitempty"`
	Channel         string     `json:"channel,omitempty"`
	Generation      uint64     `json:"generation"`
	MinAgentVersion string     `json:"minAgentVersion,omitempty"` // semver "v0.13.0"
	IssuedAt        time.Time  `json:"issuedAt"`
	Expires         *time.Time `json:"expires,omitempty"`
	Layers          []Layer    `json:"layers"`                  // every layer of the manifest, in order
	NextKeys        []string   `json:"nextKeys,omitempty"`      // key rotation: the keys trusted once this generation commits
	NextThreshold   int        `json:"nextThreshold,omitempty"` // 0 = 1
}

// Layer is one layer of the bundle's manifest as the statement names it.
type Layer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"` // sha256:...
	Size      int64  `json:"size"`
	Name      string `json:"name"` // file name: "pods.tar" for the pods layer, the archive's name for an image
}

// PodsLayerName is the Name of the pods layer.
const PodsLayerName = "pods.tar"

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse):
// the payload is the Statement's JSON, each signature is over PAE(payloadType,
// payload), so a signature cannot be replayed as one over another kind of
// document.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"` // base64 in JSON
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; KeyID is KeyID of the signing key.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// pae is DSSE's pre-authentication encoding:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN in ASCII decimal.
func pae(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len("DSSEv1")+len(payloadType)+len(payload)+48)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	b = append(b, payload...)
	return b
}

// Sign returns the envelope JSON of st signed by every key, in the order
// given. ed25519 signatures are deterministic, so equal statements and keys
// give byte-identical envelopes.
func Sign(st *Statement, keys ...ed25519.PrivateKey) ([]byte, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("sign statement of generation %d: no key", st.Generation)
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode statement of generation %d: %w", st.Generation, err)
	}
	env := Envelope{PayloadType: PayloadType, Payload: payload}
	msg := pae(PayloadType, payload)
	for i, k := range keys {
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("sign statement of generation %d: key %d is %d bytes, want an ed25519 private key", st.Generation, i, len(k))
		}
		pub := k.Public().(ed25519.PublicKey)
		env.Signatures = append(env.Signatures, Signature{KeyID: KeyID(pub), Sig: ed25519.Sign(k, msg)})
	}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope of generation %d: %w", st.Generation, err)
	}
	return out, nil
}
