package apiauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Client certificate lifetimes, as kube-controller-manager's signer for
// kubernetes.io/kube-apiserver-client bounds a CSR's expirationSeconds:
// at least 10 minutes; a year unless asked otherwise (kubeadm's client
// certificates). The CA's own expiry caps them.
const (
	MinClientValidity     = 10 * time.Minute
	DefaultClientValidity = 365 * 24 * time.Hour
)

// The groups a client certificate's Organization carries (agent/api's
// GroupAdmin and GroupReadOnly; apiauth does not import the API).
const (
	GroupAdmin    = "system:masters"
	GroupReadOnly = "podboot:read-only"
)

// NewClientKey makes a key for a client certificate and a certificate
// request for user in groups (CommonName and Organization, as
// kube-apiserver reads a client certificate), both PEM.
func NewClientKey(user string, groups []string) (keyPEM, csrPEM []byte, err error) {
	if user == "" {
		return nil, nil, errors.New("make client certificate request: the user name is empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate client key for %q: %w", user, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: user, Organization: groups},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("make client certificate request for %q: %w", user, err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, fmt.Errorf("encode client key for %q: %w", user, err)
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR decodes a PEM certificate request and checks its signature and
// that it names a user: what a client certificate can be signed for.
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no PEM CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if csr.Subject.CommonName == "" {
		// kube-apiserver's x509 authenticator ignores such a certificate.
		return nil, errors.New("the subject has no CommonName (the user name)")
	}
	return csr, nil
}

// SignClient signs a client certificate for the request csrPEM with the
// CA: the request's subject (CN the user, O the groups) and public key,
// usable for client authentication only, valid from a day before now (a
// board's clock may lag; see backdate) for validity, and no longer than
// the CA. It needs the CA key.
func (c *Credentials) SignClient(csrPEM []byte, validity time.Duration, now time.Time) ([]byte, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("sign client certificate: certificate request: %w", err)
	}
	if validity < MinClientValidity {
		return nil, fmt.Errorf("sign client certificate for %q: a validity of %s is shorter than the minimum %s", csr.Subject.CommonName, validity, MinClientValidity)
	}
	if len(c.CAKey) == 0 {
		return nil, fmt.Errorf("sign client certificate for %q: no CA key (%s is not on the flash)", csr.Subject.CommonName, CAKeyFile)
	}
	ca, err := parseCert(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("sign client certificate: CA certificate: %w", err)
	}
	caKey, err := parseKey(c.CAKey)
	if err != nil {
		return nil, fmt.Errorf("sign client certificate: CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: csr.Subject.CommonName, Organization: csr.Subject.Organization},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign client certificate for %q: %w", csr.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
