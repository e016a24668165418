package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// client talks to the agent's API.
type client struct {
	base *url.URL
	http *http.Client
}

func newClient(t target) (*client, error) {
	u, err := url.Parse(t.Server)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", t.Server, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q: want http://HOST:PORT or https://HOST:PORT", t.Server)
	}
	hc, err := t.httpClient()
	if err != nil {
		return nil, err
	}
	return &client{base: u, http: hc}, nil
}

// get sends GET path?query and returns the response if it is 2xx.
func (c *client) get(ctx context.Context, path string, query url.Values, accept string) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", u.String(), err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.String(), err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeStatus(resp)
	}
	return resp, nil
}

// post sends POST path and returns the server's Status if it is 2xx.
func (c *client) post(ctx context.Context, path string) (metav1.Status, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return metav1.Status{}, fmt.Errorf("request %s: %w", u.String(), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return metav1.Status{}, fmt.Errorf("POST %s: %w", u.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return metav1.Status{}, decodeStatus(resp)
	}
	var st metav1.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return metav1.Status{}, fmt.Errorf("POST %s: decode the answer: %w", u.String(), err)
	}
	return st, nil
}

// statusError is an error the server answered with a metav1.Status.
type statusError struct {
	code   int
	status metav1.Status
}

// Error reads as kubectl prints it: Error from server (NotFound): pods "x"
// not found, and for a 401 "error: You must be logged in to the server
// (Unauthorized)".
func (e *statusError) Error() string {
	if e.code == http.StatusUnauthorized {
		msg := e.status.Message
		if msg == "" {
			msg = "Unauthorized"
		}
		return fmt.Sprintf("error: You must be logged in to the server (%s)", msg)
	}
	if e.status.Kind == "Status" && e.status.Reason == "" && e.status.Message != "" {
		return "Error from server: " + e.status.Message
	}
	reason := string(e.status.Reason)
	if reason == "" {
		reason = http.StatusText(e.code)
	}
	msg := e.status.Message
	if msg == "" {
		msg = fmt.Sprintf("the server responded with status %d", e.code)
	}
	return fmt.Sprintf("Error from server (%s): %s", reason, msg)
}

func decodeStatus(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st metav1.Status
	if err := json.Unmarshal(b, &st); err != nil || st.Kind != "Status" {
		st = metav1.Status{Message: strings.TrimSpace(string(b))}
	}
	return &statusError{code: resp.StatusCode, status: st}
}
