package apiauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Validity periods. The board often has no RTC and may boot with a clock
// in the past until NTP answers, so certificates start a day early.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 10 * 365 * 24 * time.Hour
	backdate       = 24 * time.Hour
	tokenBytes     = 32
)

// Credentials are the API's TLS material (PEM) and bearer token.
type Credentials struct {
	CACert []byte // PEM CERTIFICATE
	// CAKey (PEM EC PRIVATE KEY) signs new server certificates; nil when
	// the flash has none (a person may keep it off the board) or Ensure
	// found it broken.
	CAKey []byte
	Cert  []byte // PEM CERTIFICATE, the server's, signed by CACert
	Key   []byte // PEM EC PRIVATE KEY, the server's
	Token string // hex, 64 characters
}

// Generate makes a new CA, a server certificate for hosts and ips signed by
// it, and a random token.
func Generate(hosts []string, ips []net.IP) (*Credentials, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "podboot-ca@" + fmt.Sprint(now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	caKeyPEM, err := encodeKey(caKey)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	c := &Credentials{
		CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CAKey:  caKeyPEM,
		Token:  token,
	}
	if err := c.Reissue(hosts, ips); err != nil {
		return nil, err
	}
	return c, nil
}

// newToken is a random bearer token: tokenBytes, hex.
func newToken() (string, error) {
	token := make([]byte, tokenBytes)
	if _, err := rand.Read(token); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(token), nil
}

// loopbacks are in every server certificate: kubectl on the board
// itself, and through a forwarded port from the machine it runs on
// (QEMU's hostfwd, ssh -L), dials them.
func loopbacks() ([]string, []net.IP) {
	return []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
}

// Reissue replaces the server certificate with a new one for hosts and
// ips (and the loopback names), signed by the CA. The server key, the CA
// and the token stay, so kubeconfigs keep working and a reissue is one
// file on the flash; a missing or unparsable key is replaced.
func (c *Credentials) Reissue(hosts []string, ips []net.IP) error {
	if len(c.CAKey) == 0 {
		return errors.New("issue server certificate: no CA key")
	}
	ca, err := parseCert(c.CACert)
	if err != nil {
		return fmt.Errorf("issue server certificate: CA certificate: %w", err)
	}
	caKey, err := parseKey(c.CAKey)
	if err != nil {
		return fmt.Errorf("issue server certificate: CA key: %w", err)
	}
	key, err := parseKey(c.Key)
	if err != nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generate server key: %w", err)
		}
		keyPEM, err := encodeKey(k)
		if err != nil {
			return fmt.Errorf("encode server key: %w", err)
		}
		key, c.Key = k, keyPEM
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	cn := "podboot"
	if len(hosts) > 0 && hosts[0] != "" {
		cn = hosts[0]
	}
	lh, lip := loopbacks()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     uniqueHosts(append(slices.Clone(hosts), lh...)),
		IPAddresses:  uniqueIPs(append(slices.Clone(ips), lip...)),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	c.Cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return nil
}

// Covers reports whether the server certificate names every host and IP.
func (c *Credentials) Covers(hosts []string, ips []net.IP) bool {
	cert, err := parseCert(c.Cert)
	if err != nil {
		return false
	}
	for _, h := range hosts {
		if h != "" && !slices.Contains(cert.DNSNames, strings.ToLower(h)) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

// sans returns the server certificate's names and addresses.
func (c *Credentials) sans() ([]string, []net.IP) {
	cert, err := parseCert(c.Cert)
	if err != nil {
		return nil, nil
	}
	return cert.DNSNames, cert.IPAddresses
}

// Validate checks that the pieces fit: the key matches the server
// certificate, the CA signed it, and the token is set.
func (c *Credentials) Validate() error {
	if _, err := tls.X509KeyPair(c.Cert, c.Key); err != nil {
		return fmt.Errorf("server certificate and key: %w", err)
	}
	ca, err := parseCert(c.CACert)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := parseCert(c.Cert)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("server certificate is not signed by the CA: %w", err)
	}
	if len(c.CAKey) > 0 {
		k, err := parseKey(c.CAKey)
		if err != nil {
			return fmt.Errorf("CA key: %w", err)
		}
		if !k.Public().(*ecdsa.PublicKey).Equal(ca.PublicKey) {
			return errors.New("CA key does not match the CA certificate")
		}
	}
	if c.Token == "" {
		return errors.New("token is empty")
	}
	return nil
}

// TLSConfig is a server configuration presenting the server certificate.
func (c *Credentials) TLSConfig() (*tls.Config, error) {
	pair, err := tls.X509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	// The chain includes the CA so clients that pin only it still verify.
	pair.Certificate = append(pair.Certificate, firstDER(c.CACert))
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// CertPool holds the CA, for clients.
func (c *Credentials) CertPool() (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(c.CACert) {
		return nil, errors.New("CA certificate: no PEM certificate found")
	}
	return p, nil
}

func firstDER(pemBytes []byte) []byte {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil
	}
	return b.Bytes
}

func parseCert(pemBytes []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(pemBytes []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	switch b.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", b.Type)
	}
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func uniqueHosts(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if ip != nil && !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}
