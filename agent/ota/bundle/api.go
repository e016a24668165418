package bundle

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"io/fs"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// Media types of a bundle.
const (
	ArtifactType      = "application/vnd.podboot.ota.bundle.v1"
	MediaTypeEnvelope = "application/vnd.podboot.ota.statement.v1+json" // the manifest's config: Envelope JSON
	MediaTypePods     = "application/vnd.podboot.ota.pods.v1.tar"       // one layer: tar of the pods dir's *.yaml/*.yml/*.json (flat, regular files only)
	MediaTypeImage    = "application/vnd.podboot.ota.image.v1.tar"      // one layer per image archive (OCI or docker archive), title = file name
	PayloadType       = "application/vnd.podboot.ota.statement.v1+json" // DSSE payloadType
)

// Size caps of what is read into memory while opening a bundle.
const (
	MaxManifestSize = 1 << 20
	MaxEnvelopeSize = 1 << 20
)

var errTODO = errors.New("bundle: not implemented yet")

func GenerateKey(path string) (pubLine string, err error)   { return "", errTODO }
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) { return nil, errTODO }
func ParsePublicKey(line string) (ed25519.PublicKey, error) { return nil, errTODO }
func FormatPublicKey(ed25519.PublicKey) string              { return "" }
func KeyID(ed25519.PublicKey) string                        { return "" }

type Statement struct {
	Fleet           string     `json:"fleet,omitempty"`
	Channel         string     `json:"channel,omitempty"`
	Generation      uint64     `json:"generation"`
	MinAgentVersion string     `json:"minAgentVersion,omitempty"`
	IssuedAt        time.Time  `json:"issuedAt"`
	Expires         *time.Time `json:"expires,omitempty"`
	Layers          []Layer    `json:"layers"`
	NextKeys        []string   `json:"nextKeys,omitempty"`
	NextThreshold   int        `json:"nextThreshold,omitempty"`
}

type Layer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Name      string `json:"name"`
}

type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

type BuildOptions struct {
	Keys            []ed25519.PrivateKey
	Generation      uint64
	PodsDir         string
	ImagesDir       string
	Fleet, Channel  string
	MinAgentVersion string
	NextKeys        []string
	NextThreshold   int
	IssuedAt        time.Time
	ExpiresIn       time.Duration
}

func Build(ctx context.Context, opts BuildOptions, out io.Writer) error { return errTODO }

type Refusal struct{ Reason, Message string }

func (r *Refusal) Error() string { return r.Message }

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

type Policy struct {
	Keys         []ed25519.PublicKey
	Threshold    int
	Channel      string
	Committed    uint64
	Failed       []uint64
	AgentVersion string
	Now          time.Time
	ClockTrusted bool
}

func (p Policy) Verify(envelope []byte) (*Statement, error) { return nil, errTODO }

type Bundle struct {
	Statement *Statement
	Envelope  []byte
	Manifest  ocispec.Descriptor
	store     content.Fetcher
}

func Open(ctx context.Context, store content.Fetcher, manifest ocispec.Descriptor, p Policy) (*Bundle, error) {
	return nil, errTODO
}

func (b *Bundle) Unpack(ctx context.Context, w Writer, dir string) error { return errTODO }

type Writer interface {
	MkdirAll(path string, perm fs.FileMode) error
	WriteFile(path string, r io.Reader, perm fs.FileMode) error
}

func OpenTar(ctx context.Context, path string) (content.ReadOnlyStorage, ocispec.Descriptor, error) {
	return nil, ocispec.Descriptor{}, errTODO
}

func OpenLayout(ctx context.Context, dir string) (content.ReadOnlyStorage, ocispec.Descriptor, error) {
	return nil, ocispec.Descriptor{}, errTODO
}
