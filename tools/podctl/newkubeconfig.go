package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/apiauth"
	"github.com/podboot/podboot/internal/atomicfile"
)

// newKubeconfig writes a kubeconfig for a new user of the board: a key
// made here and a client certificate for it signed by the board's CA, with
// the user as its CommonName and the credential kind as its group
// (system:masters, or podboot:read-only with --read-only). The key never
// leaves this machine: the board signs a certificate request, over its
// authenticated API (an admin's credentials), or, with --flash DIR, podctl
// signs with the CA key of a board's flash mounted here.
func newKubeconfig(ctx context.Context, cfg Config) error {
	if cfg.User == "" {
		return errors.New("kubeconfig: --user NAME is required: the user the new kubeconfig authenticates as")
	}
	if cfg.Duration < apiauth.MinClientValidity || cfg.Duration.Seconds() > math.MaxInt32 {
		return fmt.Errorf("kubeconfig: --duration %s: want at least %s and at most %d seconds", cfg.Duration, apiauth.MinClientValidity, math.MaxInt32)
	}
	kind, groups := "admin", []string{apiauth.GroupAdmin}
	if cfg.ReadOnly {
		kind, groups = "read-only", []string{apiauth.GroupReadOnly}
	}
	key, csr, err := apiauth.NewClientKey(cfg.User, groups)
	if err != nil {
		return err
	}
	var (
		cert, ca []byte
		server   string
		insecure bool
	)
	if cfg.Flash != "" {
		if cfg.Server == "" {
			return errors.New("kubeconfig --flash: --server URL is required: the board's address the kubeconfig names")
		}
		if cfg.Vsock != "" || cfg.Kubeconfig != "" || cfg.Token != "" {
			return errors.New("kubeconfig --flash signs with the flash's CA key: it does not go with --vsock, --kubeconfig or --token")
		}
		creds, err := apiauth.LoadFlash(cfg.Flash)
		if err != nil {
			return fmt.Errorf("kubeconfig --flash %q: %w", cfg.Flash, err)
		}
		if cert, err = creds.SignClient(csr, cfg.Duration, time.Now()); err != nil {
			return fmt.Errorf("kubeconfig --flash %q: %w", cfg.Flash, err)
		}
		ca, server = creds.CACert, cfg.Server
	} else {
		if cfg.Vsock != "" {
			return errors.New("kubeconfig: a kubeconfig names the board's HTTPS address, and client certificates need TLS: use --server or --kubeconfig, not --vsock")
		}
		t, err := findServer(cfg)
		if err != nil {
			return err
		}
		if u, err := url.Parse(t.Server); err == nil && u.Scheme != "https" {
			return fmt.Errorf("kubeconfig: server %q is not HTTPS: client certificates need TLS (the board's HTTPS listener, device.yaml api.listen)", t.Server)
		}
		c, err := newClient(t)
		if err != nil {
			return err
		}
		if cert, err = requestCertificate(ctx, c, cfg.User, csr, cfg.Duration); err != nil {
			return err
		}
		if ca, err = t.caData(); err != nil {
			return err
		}
		server, insecure = t.Server, t.Cluster.InsecureSkipTLSVerify
	}
	kc, err := apiauth.ClientKubeconfig(server, ca, insecure, cfg.User, cert, key)
	if err != nil {
		return err
	}
	if cfg.Output == "" {
		_, err := cfg.Stdout.Write(kc)
		return err
	}
	if err := writePrivate(cfg.Output, kc); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Stdout, "kubeconfig for user %q (%s, valid for %s) written to %s\n", cfg.User, kind, cfg.Duration, cfg.Output)
	return nil
}

// csrPath is the board's signing endpoint (agent/api.CSRPath; podctl
// does not link the API server for one string).
const csrPath = "/podboot/v1/certificatesigningrequests"

// requestCertificate has the board sign csr: a certificates.k8s.io/v1
// CertificateSigningRequest for kubernetes.io/kube-apiserver-client,
// POSTed to its signing endpoint, which answers with it signed.
func requestCertificate(ctx context.Context, c *client, user string, csr []byte, validity time.Duration) ([]byte, error) {
	seconds := int32(validity / time.Second)
	body, err := json.Marshal(certificatesv1.CertificateSigningRequest{
		TypeMeta:   metav1.TypeMeta{Kind: "CertificateSigningRequest", APIVersion: certificatesv1.SchemeGroupVersion.String()},
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           csr,
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			ExpirationSeconds: &seconds,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encode certificate signing request: %w", err)
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + csrPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u.String(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, decodeStatus(resp)
	}
	var signed certificatesv1.CertificateSigningRequest
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&signed); err != nil {
		return nil, fmt.Errorf("POST %s: decode the answer: %w", u.String(), err)
	}
	if len(signed.Status.Certificate) == 0 {
		return nil, fmt.Errorf("POST %s: the board answered without a certificate", u.String())
	}
	return signed.Status.Certificate, nil
}

// writePrivate writes a file only its owner can read (it holds a key),
// atomically, creating its directory.
func writePrivate(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write kubeconfig %q: %w", path, err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %q: %w", path, err)
	}
	// atomicfile keeps an existing file's mode; this one holds a key.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %q: %w", path, err)
	}
	return nil
}
