package containerd

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistryHosts(t *testing.T) {
	mirrors := map[string][]string{
		"docker.io":       {"http://127.0.0.1:5000", "https://mirror.example/cache/"},
		"registry.k8s.io": {"https://k8s-mirror.example/v2"},
		"*":               {"http://any-mirror.example:5000"},
	}
	tests := []struct {
		host string
		want []string // scheme://host+path, in the order tried
	}{
		{host: "docker.io", want: []string{"http://127.0.0.1:5000/v2", "https://mirror.example/cache/v2", "https://registry-1.docker.io/v2"}},
		{host: "registry.k8s.io", want: []string{"https://k8s-mirror.example/v2", "https://registry.k8s.io/v2"}},
		{host: "gcr.io", want: []string{"http://any-mirror.example:5000/v2", "https://gcr.io/v2"}},
		{host: "localhost:5000", want: []string{"http://any-mirror.example:5000/v2", "http://localhost:5000/v2"}},
	}
	hosts := registryHosts(mirrors, http.DefaultClient)
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := hosts(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			var urls []string
			for _, h := range got {
				urls = append(urls, h.Scheme+"://"+h.Host+h.Path)
				if h.Client == nil || h.Authorizer == nil {
					t.Errorf("%s: no client or authorizer", h.Host)
				}
			}
			if diff := cmp.Diff(tt.want, urls); diff != "" {
				t.Errorf("hosts tried (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegistryHostsWithoutMirrors(t *testing.T) {
	got, err := registryHosts(nil, http.DefaultClient)("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Host != "registry-1.docker.io" || got[0].Scheme != "https" {
		t.Errorf("hosts = %+v, want only https://registry-1.docker.io", got)
	}
}

func TestValidateMirrors(t *testing.T) {
	tests := []struct {
		name    string
		mirrors map[string][]string
		wantErr string // "" = valid
	}{
		{name: "none"},
		{name: "valid", mirrors: map[string][]string{"docker.io": {"http://127.0.0.1:5000"}, "*": {"https://m.example/x"}}},
		{name: "no endpoint", mirrors: map[string][]string{"docker.io": {}}, wantErr: `registry mirrors of "docker.io": no endpoint`},
		{name: "bad scheme", mirrors: map[string][]string{"docker.io": {"ftp://m.example"}}, wantErr: `registry mirrors of "docker.io": endpoint "ftp://m.example": scheme must be http or https`},
		{name: "no scheme", mirrors: map[string][]string{"docker.io": {"127.0.0.1:5000"}}, wantErr: `registry mirrors of "docker.io": endpoint "127.0.0.1:5000"`},
		{name: "no host", mirrors: map[string][]string{"docker.io": {"http:///v2"}}, wantErr: `endpoint "http:///v2": no host`},
		{name: "query", mirrors: map[string][]string{"docker.io": {"http://m.example/?a=b"}}, wantErr: `only scheme, host and path are allowed`},
		{name: "bad host key", mirrors: map[string][]string{"docker.io/library": {"http://m.example"}}, wantErr: `registry mirrors: "docker.io/library" is not a registry host`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateMirrors(tt.mirrors)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("validateMirrors: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("validateMirrors error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
