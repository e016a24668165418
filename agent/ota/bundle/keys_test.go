package bundle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateKeyRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.key")
	line, err := GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("private key mode %v, want 0600", got)
	}
	pubFile, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(line+"\n", string(pubFile)); diff != "" {
		t.Errorf("KEY.pub (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(line, "ed25519:") || strings.Count(string(pubFile), "\n") != 1 {
		t.Errorf("KEY.pub %q is not one ed25519: line", pubFile)
	}
	priv, err := LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParsePublicKey(string(pubFile)) // with its newline: device.yaml copies may keep it
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Equal(pub(priv)) {
		t.Errorf("KEY.pub does not hold the private key's public key")
	}
	if got := FormatPublicKey(parsed); got != line {
		t.Errorf("FormatPublicKey = %q, want %q", got, line)
	}
	if got := KeyID(parsed); len(got) != 16 {
		t.Errorf("KeyID = %q, want 16 hex digits", got)
	}

	// A second keygen to the same path must not touch the first key.
	before, _ := os.ReadFile(path)
	if _, err := GenerateKey(path); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("GenerateKey over an existing key: err = %v, want a refusal to overwrite", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Errorf("GenerateKey changed the existing key")
	}
}

func TestGenerateKeyRefusesExistingPub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(path+".pub", []byte("ed25519:old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(path); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("err = %v, want a refusal to overwrite", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a refused keygen left %s behind (stat: %v)", path, err)
	}
}

func TestParsePublicKeyErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"", `parse public key "": want "ed25519:" followed by the base64 of the key`},
		{"ssh-ed25519 AAAAC3Nza", `parse public key "ssh-ed25519 AAAAC3Nza": want "ed25519:" followed by the base64 of the key`},
		{"ed25519:not base64!", `parse public key "ed25519:not base64!": illegal base64 data at input byte 3`},
		{"ed25519:AAAA", `parse public key "ed25519:AAAA": 3 bytes, want 32`},
	}
	for _, tt := range tests {
		_, err := ParsePublicKey(tt.line)
		if err == nil {
			t.Errorf("ParsePublicKey(%q) succeeded", tt.line)
			continue
		}
		if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
			t.Errorf("ParsePublicKey(%q) error (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestLoadPrivateKeyErrors(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	edDER, err := x509.MarshalPKCS8PrivateKey(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "no PEM block"},
		{"public key line", "ed25519:AAAA\n", "no PEM block"},
		{"wrong PEM type", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: edDER})), `PEM block is "RSA PRIVATE KEY", want "PRIVATE KEY" (PKCS#8)`},
		{"ecdsa key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), "want an ed25519 key"},
		{"garbage DER", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("nope")})), "asn1"},
		{"trailing data", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})) + "junk", "trailing data after the PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPrivateKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadPrivateKey: err = %v, want one naming %s and containing %q", err, path, tt.want)
			}
		})
	}
}
