package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"time"
)

// testKey is a fixed key, so messages naming key IDs are stable.
func testKey(i byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{i}, ed25519.SeedSize))
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func id(k ed25519.PrivateKey) string { return KeyID(pub(k)) }

var testIssued = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testStatement(gen uint64) *Statement {
	return &Statement{
		Channel:         "stable",
		Generation:      gen,
		MinAgentVersion: "v0.13.0",
		IssuedAt:        testIssued,
		Layers: []Layer{
			{MediaType: MediaTypePods, Digest: "sha256:" + fmt.Sprintf("%064x", 1), Size: 1024, Name: PodsLayerName},
			{MediaType: MediaTypeImage, Digest: "sha256:" + fmt.Sprintf("%064x", 2), Size: 4096, Name: "app.tar"},
		},
	}
}

func mustSign(t testing.TB, st *Statement, keys ...ed25519.PrivateKey) []byte {
	t.Helper()
	env, err := Sign(st, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// editEnvelope decodes env, lets edit change it, and encodes it again.
func editEnvelope(t testing.TB, env []byte, edit func(*Envelope)) []byte {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	edit(&e)
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// asRefusal returns err's *Refusal, or fails the test.
func asRefusal(t testing.TB, err error) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T) is not a *Refusal", err, err)
	}
	return r
}

// memWriter is an in-memory Writer: a file only exists once WriteFile read
// its reader to the end without error, as a real durable write.
type memWriter struct {
	dirs  map[string]bool
	files map[string][]byte
}

func newMemWriter() *memWriter {
	return &memWriter{dirs: map[string]bool{}, files: map[string][]byte{}}
}

func (m *memWriter) MkdirAll(path string, perm fs.FileMode) error {
	for p := path; p != "/" && p != "."; p = filepath.Dir(p) {
		m.dirs[p] = true
	}
	return nil
}

func (m *memWriter) WriteFile(path string, r io.Reader, perm fs.FileMode) error {
	if !m.dirs[filepath.Dir(path)] {
		return fmt.Errorf("write %s: directory %s was not made", path, filepath.Dir(path))
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	m.files[path] = data
	return nil
}
