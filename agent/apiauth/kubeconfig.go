package apiauth

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/internal/atomicfile"
)

// ContextName names the cluster, user and context in kubeconfigs written
// here.
const ContextName = "podboot"

// The clientcmd v1 schema, only the fields written here: client-go's
// types would pull in client-go for a dozen lines of YAML.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
	Preferences    struct{}       `json:"preferences"`
}

type namedCluster struct {
	Name    string  `json:"name"`
	Cluster cluster `json:"cluster"`
}

type cluster struct {
	Server                   string `json:"server"`
	CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
	InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify,omitempty"`
}

type namedUser struct {
	Name string `json:"name"`
	User user   `json:"user"`
}

type user struct {
	Token                 string `json:"token,omitempty"`
	ClientCertificateData []byte `json:"client-certificate-data,omitempty"`
	ClientKeyData         []byte `json:"client-key-data,omitempty"`
}

type namedContext struct {
	Name    string      `json:"name"`
	Context kubeContext `json:"context"`
}

type kubeContext struct {
	Cluster string `json:"cluster"`
	User    string `json:"user"`
}

// Kubeconfig is a kubeconfig for server (https://host:port) that trusts
// the CA and sends the token, in context "podboot" made current.
func (c *Credentials) Kubeconfig(server string) ([]byte, error) {
	kc := kubeconfig{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []namedCluster{{Name: ContextName, Cluster: cluster{Server: server, CertificateAuthorityData: c.CACert}}},
		Users:          []namedUser{{Name: ContextName, User: user{Token: c.Token}}},
		Contexts:       []namedContext{{Name: ContextName, Context: kubeContext{Cluster: ContextName, User: ContextName}}},
		CurrentContext: ContextName,
	}
	b, err := yaml.Marshal(kc)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig: %w", err)
	}
	return b, nil
}

// WriteKubeconfig writes Kubeconfig(server) to path (mode 0600: it holds
// the token), creating the directory.
func (c *Credentials) WriteKubeconfig(path, server string) error {
	b, err := c.Kubeconfig(server)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write kubeconfig %q: %w", path, err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	// atomicfile keeps an existing file's mode; this one holds the token.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig %q: %w", path, err)
	}
	return nil
}

// ClientKubeconfig is a kubeconfig for server that authenticates as name
// with a client certificate and its key (PEM): cluster "podboot" trusting
// caPEM (or, with insecure and no CA, not verifying the server), user
// name, context "name@podboot" made current. kubectl reads it as it is.
func ClientKubeconfig(server string, caPEM []byte, insecure bool, name string, certPEM, keyPEM []byte) ([]byte, error) {
	ctx := name + "@" + ContextName
	kc := kubeconfig{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []namedCluster{{Name: ContextName, Cluster: cluster{Server: server, CertificateAuthorityData: caPEM, InsecureSkipTLSVerify: insecure && len(caPEM) == 0}}},
		Users:          []namedUser{{Name: name, User: user{ClientCertificateData: certPEM, ClientKeyData: keyPEM}}},
		Contexts:       []namedContext{{Name: ctx, Context: kubeContext{Cluster: ContextName, User: name}}},
		CurrentContext: ctx,
	}
	b, err := yaml.Marshal(kc)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig for %q: %w", name, err)
	}
	return b, nil
}
