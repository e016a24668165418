package apiauth

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"
)

func TestSignClient(t *testing.T) {
	c, err := Generate([]string{"board"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := parseCert(c.CACert)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// DER sorts the Organizations of one set: given sorted, they read back so.
	key, csr, err := NewClientKey("dash", []string{"ops", GroupReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := c.SignClient(csr, 48*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, key); err != nil {
		t.Errorf("the certificate does not go with the key: %v", err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := c.CertPool()
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as a client certificate: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Error("the client certificate verifies as a server's")
	}
	type subject struct {
		CN                  string
		O                   []string
		NotBefore, NotAfter time.Time
		IsCA                bool
	}
	want := subject{"dash", []string{"ops", GroupReadOnly}, now.Add(-backdate).Truncate(time.Second), now.Add(48 * time.Hour).Truncate(time.Second), false}
	got := subject{cert.Subject.CommonName, cert.Subject.Organization, cert.NotBefore, cert.NotAfter, cert.IsCA}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("certificate (-want +got):\n%s", diff)
	}

	// Never beyond the CA.
	long, err := c.SignClient(csr, 100*365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if lc, _ := parseCert(long); !lc.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("a century's certificate ends %s, want the CA's end %s", lc.NotAfter, ca.NotAfter)
	}

	noCN := csrWithoutCN(t)
	_, otherCSR, err := NewClientKey("x", nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := tamper(t, otherCSR)
	for _, tt := range []struct {
		name  string
		creds *Credentials
		csr   []byte
		valid time.Duration
		want  string
	}{
		{"too short", c, csr, 5 * time.Minute, "a validity of 5m0s is shorter than the minimum 10m0s"},
		{"no CA key", &Credentials{CACert: c.CACert}, csr, time.Hour, "no CA key (ca.key is not on the flash)"},
		{"not PEM", c, []byte("hello"), time.Hour, "no PEM CERTIFICATE REQUEST block"},
		{"a certificate, not a request", c, certPEM, time.Hour, "no PEM CERTIFICATE REQUEST block"},
		{"no CommonName", c, noCN, time.Hour, "the subject has no CommonName"},
		{"bad signature", c, tampered, time.Hour, "signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.creds.SignClient(tt.csr, tt.valid, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SignClient: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// csrWithoutCN is a request with an empty subject, which NewClientKey
// refuses to make.
func csrWithoutCN(t *testing.T) []byte {
	t.Helper()
	key, _, err := NewClientKey("placeholder", nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// tamper flips a bit of the request's signature.
func tamper(t *testing.T, csrPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(csrPEM)
	der := append([]byte(nil), b.Bytes...)
	der[len(der)-3] ^= 0x01
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestNewClientKeyNeedsAUser(t *testing.T) {
	if _, _, err := NewClientKey("", nil); err == nil {
		t.Error("NewClientKey with no user name: no error")
	}
}

func TestClientKubeconfig(t *testing.T) {
	b, err := ClientKubeconfig("https://board:6443", []byte("CA"), false, "dash", []byte("CERT"), []byte("KEY"))
	if err != nil {
		t.Fatal(err)
	}
	var got kubeconfig
	if err := yaml.UnmarshalStrict(b, &got); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	want := kubeconfig{
		APIVersion: "v1", Kind: "Config",
		Clusters:       []namedCluster{{Name: "podboot", Cluster: cluster{Server: "https://board:6443", CertificateAuthorityData: []byte("CA")}}},
		Users:          []namedUser{{Name: "dash", User: user{ClientCertificateData: []byte("CERT"), ClientKeyData: []byte("KEY")}}},
		Contexts:       []namedContext{{Name: "dash@podboot", Context: kubeContext{Cluster: "podboot", User: "dash"}}},
		CurrentContext: "dash@podboot",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kubeconfig (-want +got):\n%s", diff)
	}
	if strings.Contains(string(b), "token") || strings.Contains(string(b), "insecure") {
		t.Errorf("kubeconfig has a token or insecure field:\n%s", b)
	}
	insecure, err := ClientKubeconfig("https://board:6443", nil, true, "dash", []byte("CERT"), []byte("KEY"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(insecure), "insecure-skip-tls-verify: true") {
		t.Errorf("insecure kubeconfig:\n%s", insecure)
	}
}

func TestEnsureReadOnlyToken(t *testing.T) {
	flash := t.TempDir()
	if _, _, err := EnsureReadOnlyToken(flash); err == nil {
		t.Error("EnsureReadOnlyToken without api/: no error")
	}
	c, err := Generate([]string{"board"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFlash(flash); err != nil {
		t.Fatal(err)
	}
	api := filepath.Join(flash, Dir)
	path := filepath.Join(api, ReadOnlyTokenFile)
	// What an interrupted write leaves.
	leftover := filepath.Join(api, "."+ReadOnlyTokenFile+"1234")
	if err := os.WriteFile(leftover, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}

	first, created, err := EnsureReadOnlyToken(flash)
	if err != nil || !created || len(first) != 2*tokenBytes {
		t.Fatalf("first EnsureReadOnlyToken = %q, %v, %v; want a new token", first, created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", path, fi, err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover %s still there: %v", leftover, err)
	}
	again, created, err := EnsureReadOnlyToken(flash)
	if err != nil || created || again != first {
		t.Errorf("second EnsureReadOnlyToken = %q, %v, %v; want %q kept", again, created, err, first)
	}
	tokens, err := LoadTokens(flash)
	if err != nil || tokens != (Tokens{Admin: c.Token, ReadOnly: first}) {
		t.Errorf("LoadTokens = %+v, %v; want admin %q, read-only %q", tokens, err, c.Token, first)
	}
	// The admin's token is left alone.
	if got, _ := os.ReadFile(filepath.Join(api, TokenFile)); strings.TrimSpace(string(got)) != c.Token {
		t.Errorf("admin token changed to %q", got)
	}

	// An empty (truncated) token is replaced.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokens(flash); err == nil {
		t.Error("LoadTokens with an empty read-only token: no error")
	}
	replaced, created, err := EnsureReadOnlyToken(flash)
	if err != nil || !created || replaced == first || replaced == "" {
		t.Errorf("EnsureReadOnlyToken over an empty file = %q, %v, %v; want a new token", replaced, created, err)
	}
}

func TestEnsureReadOnlyTokenReadOnlyFlash(t *testing.T) {
	flash := t.TempDir()
	c, err := Generate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFlash(flash); err != nil {
		t.Fatal(err)
	}
	api := filepath.Join(flash, Dir)
	if os.Geteuid() == 0 {
		// Root writes through a mode of 0500: a read-only bind mount is a
		// read-only flash for root too.
		if err := unix.Mount(api, api, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(api, unix.MNT_DETACH) })
		if err := unix.Mount("", api, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := os.Chmod(api, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(api, 0o700) })
	}
	token, created, err := EnsureReadOnlyToken(flash)
	if err == nil || !created || token == "" {
		t.Errorf("EnsureReadOnlyToken on a read-only flash = %q, %v, %v; want a token to serve and the write error", token, created, err)
	}
}
