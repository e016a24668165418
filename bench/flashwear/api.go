package flashwear

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// api talks to the board's agent with the image's kubeconfig (its CA and
// token), through the forwarded port.
type api struct {
	base   string
	token  string
	client *http.Client
}

func newAPI(kubeconfig, base string) (*api, error) {
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct {
				CAData []byte `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Token string `json:"token"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("parse kubeconfig %s: %w", kubeconfig, err)
	}
	if len(kc.Clusters) == 0 || len(kc.Users) == 0 || kc.Users[0].User.Token == "" {
		return nil, fmt.Errorf("kubeconfig %s: want a cluster and a user with a token", kubeconfig)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(kc.Clusters[0].Cluster.CAData) {
		return nil, fmt.Errorf("kubeconfig %s: no PEM certificate in certificate-authority-data", kubeconfig)
	}
	return &api{
		base:  base,
		token: kc.Users[0].User.Token,
		client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		},
	}, nil
}

func (a *api) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func (a *api) pods(ctx context.Context) ([]corev1.Pod, error) {
	var list corev1.PodList
	err := a.do(ctx, http.MethodGet, "/api/v1/namespaces/default/pods", nil, &list)
	return list.Items, err
}

func (a *api) reboot(ctx context.Context) error {
	return a.do(ctx, http.MethodPost, "/podboot/v1/reboot", nil, nil)
}
