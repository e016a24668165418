package bundle

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// publicKeyPrefix names the algorithm in a public key line, so another
// algorithm can be added later without ambiguity.
const publicKeyPrefix = "ed25519:"

// GenerateKey writes a new ed25519 private key to path (PKCS#8 PEM, mode
// 0600) and its public key line to path+".pub", and returns that line
// without the newline. It refuses to overwrite an existing key: losing a
// fleet's signing key by a mistyped command cannot be undone.
func GenerateKey(path string) (pubLine string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate ed25519 key %q: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("encode private key %q: %w", path, err)
	}
	pubLine = FormatPublicKey(pub)
	// The .pub is checked before the key is created so that a refusal
	// leaves nothing behind.
	if _, err := os.Lstat(path + ".pub"); err == nil {
		return "", fmt.Errorf("generate key %q: %s already exists; refusing to overwrite it", path, path+".pub")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("generate key %q: it already exists; refusing to overwrite it", path)
		}
		return "", fmt.Errorf("create private key %q: %w", path, err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write private key %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("sync private key %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("close private key %q: %w", path, err)
	}
	pf, err := os.OpenFile(path+".pub", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create public key %q: %w", path+".pub", err)
	}
	if _, err := pf.WriteString(pubLine + "\n"); err != nil {
		pf.Close()
		os.Remove(path)
		os.Remove(path + ".pub")
		return "", fmt.Errorf("write public key %q: %w", path+".pub", err)
	}
	if err := pf.Close(); err != nil {
		os.Remove(path)
		os.Remove(path + ".pub")
		return "", fmt.Errorf("close public key %q: %w", path+".pub", err)
	}
	return pubLine, nil
}

// LoadPrivateKey reads a private key written by GenerateKey (PKCS#8 PEM).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("load private key %q: no PEM block", path)
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load private key %q: PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", path, block.Type)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("load private key %q: trailing data after the PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load private key %q: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load private key %q: a %T, want an ed25519 key", path, key)
	}
	return priv, nil
}

// ParsePublicKey parses a public key line "ed25519:<std base64>" as
// device.yaml's ota.keys and a statement's nextKeys hold it.
func ParsePublicKey(line string) (ed25519.PublicKey, error) {
	line = strings.TrimSpace(line)
	b64, ok := strings.CutPrefix(line, publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("parse public key %q: want %q followed by the base64 of the key", line, publicKeyPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("parse public key %q: %w", line, err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("parse public key %q: %d bytes, want %d", line, len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// FormatPublicKey is the line ParsePublicKey reads.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// KeyID names a public key in a signature: the hex of the first 8 bytes of
// its sha256. It is a hint to find the key, never trusted by itself: the
// signature is always checked against the trusted key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
