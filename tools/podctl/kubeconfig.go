package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// kubeconfig is the part of a kubeconfig file podctl uses.
type kubeconfig struct {
	CurrentContext string         `json:"current-context"`
	Clusters       []namedCluster `json:"clusters"`
	Contexts       []namedContext `json:"contexts"`
	Users          []namedUser    `json:"users"`
}

type namedCluster struct {
	Name    string  `json:"name"`
	Cluster cluster `json:"cluster"`
}

type cluster struct {
	Server                   string `json:"server"`
	CertificateAuthority     string `json:"certificate-authority"`
	CertificateAuthorityData []byte `json:"certificate-authority-data"`
	InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
}

type namedContext struct {
	Name    string      `json:"name"`
	Context kubeContext `json:"context"`
}

type kubeContext struct {
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace"`
}

type namedUser struct {
	Name string `json:"name"`
	User user   `json:"user"`
}

type user struct {
	Token                 string `json:"token"`
	Username              string `json:"username"`
	Password              string `json:"password"`
	ClientCertificate     string `json:"client-certificate"`
	ClientCertificateData []byte `json:"client-certificate-data"`
	ClientKey             string `json:"client-key"`
	ClientKeyData         []byte `json:"client-key-data"`
}

// target is the server podctl talks to and how.
type target struct {
	Server    string
	Namespace string // from the context; "" if none
	Cluster   cluster
	User      user
}

// findTarget resolves the server as kubectl does: --kubeconfig, else the
// files of $KUBECONFIG merged (the first to set a name wins), else
// ~/.kube/config; --server overrides the cluster's server.
func findTarget(server, kubeconfigFlag, kubeconfigEnv, home string) (target, error) {
	var files []string
	switch {
	case kubeconfigFlag != "":
		files = []string{kubeconfigFlag}
	case kubeconfigEnv != "":
		files = filepath.SplitList(kubeconfigEnv)
	case home != "":
		def := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(def); err == nil {
			files = []string{def}
		}
	}
	var merged kubeconfig
	for _, f := range files {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) && kubeconfigFlag == "" {
			continue // kubectl skips missing $KUBECONFIG entries
		}
		if err != nil {
			return target{}, fmt.Errorf("read kubeconfig: %w", err)
		}
		var kc kubeconfig
		if err := yaml.Unmarshal(b, &kc); err != nil {
			return target{}, fmt.Errorf("parse kubeconfig %q: %w", f, err)
		}
		merge(&merged, kc)
	}
	t, err := merged.resolve()
	if err != nil {
		return t, err
	}
	if server != "" {
		t.Server = server
	}
	if t.Server == "" {
		return t, errors.New("no server: pass --server URL or --kubeconfig FILE, or set KUBECONFIG")
	}
	return t, nil
}

func merge(dst *kubeconfig, src kubeconfig) {
	if dst.CurrentContext == "" {
		dst.CurrentContext = src.CurrentContext
	}
	for _, c := range src.Clusters {
		if findNamed(dst.Clusters, c.Name, func(c namedCluster) string { return c.Name }) < 0 {
			dst.Clusters = append(dst.Clusters, c)
		}
	}
	for _, c := range src.Contexts {
		if findNamed(dst.Contexts, c.Name, func(c namedContext) string { return c.Name }) < 0 {
			dst.Contexts = append(dst.Contexts, c)
		}
	}
	for _, u := range src.Users {
		if findNamed(dst.Users, u.Name, func(u namedUser) string { return u.Name }) < 0 {
			dst.Users = append(dst.Users, u)
		}
	}
}

func findNamed[T any](list []T, name string, nameOf func(T) string) int {
	for i, x := range list {
		if nameOf(x) == name {
			return i
		}
	}
	return -1
}

func (kc kubeconfig) resolve() (target, error) {
	if kc.CurrentContext == "" {
		return target{}, nil
	}
	i := findNamed(kc.Contexts, kc.CurrentContext, func(c namedContext) string { return c.Name })
	if i < 0 {
		return target{}, fmt.Errorf("kubeconfig: context %q not found", kc.CurrentContext)
	}
	ctx := kc.Contexts[i].Context
	t := target{Namespace: ctx.Namespace}
	if ctx.Cluster != "" {
		j := findNamed(kc.Clusters, ctx.Cluster, func(c namedCluster) string { return c.Name })
		if j < 0 {
			return target{}, fmt.Errorf("kubeconfig: cluster %q of context %q not found", ctx.Cluster, kc.CurrentContext)
		}
		t.Cluster = kc.Clusters[j].Cluster
		t.Server = t.Cluster.Server
	}
	if ctx.User != "" {
		j := findNamed(kc.Users, ctx.User, func(u namedUser) string { return u.Name })
		if j < 0 {
			return target{}, fmt.Errorf("kubeconfig: user %q of context %q not found", ctx.User, kc.CurrentContext)
		}
		t.User = kc.Users[j].User
	}
	return t, nil
}

// caData is the cluster's CA certificates (PEM): the file's, else the
// kubeconfig's data; nil when it names none.
func (t target) caData() ([]byte, error) {
	if t.Cluster.CertificateAuthority == "" {
		return t.Cluster.CertificateAuthorityData, nil
	}
	b, err := os.ReadFile(t.Cluster.CertificateAuthority)
	if err != nil {
		return nil, fmt.Errorf("read certificate authority: %w", err)
	}
	return b, nil
}

// httpClient returns a client with the cluster's TLS settings and the
// user's credentials.
func (t target) httpClient() (*http.Client, error) {
	tc := &tls.Config{InsecureSkipVerify: t.Cluster.InsecureSkipTLSVerify}
	ca, err := t.caData()
	if err != nil {
		return nil, err
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("certificate authority: no PEM certificate found")
		}
		tc.RootCAs = pool
	}
	cert, key := t.User.ClientCertificateData, t.User.ClientKeyData
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{t.User.ClientCertificate, &cert}, {t.User.ClientKey, &key}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("read client credentials: %w", err)
		}
		*f.dst = b
	}
	if len(cert) > 0 || len(key) > 0 {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: authTransport{base: tr, user: t.User}}, nil
}

// authTransport adds the user's token or basic credentials.
type authTransport struct {
	base http.RoundTripper
	user user
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case a.user.Token != "":
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+a.user.Token)
	case a.user.Username != "":
		r = r.Clone(r.Context())
		r.SetBasicAuth(a.user.Username, a.user.Password)
	}
	return a.base.RoundTrip(r)
}
