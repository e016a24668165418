package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Authenticate wraps an API handler so that every request must carry
// "Authorization: Bearer <token>", as kube-apiserver's token authenticator
// reads it. A request without credentials may still read the probes and
// /version (kube-apiserver's system:public-info-viewer); anything else, and
// any request with a wrong token, even to a probe, is 401 with the Status
// kube-apiserver sends, which kubectl prints as "error: You must be logged
// in to the server (Unauthorized)".
func Authenticate(next http.Handler, token string) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, present := bearerToken(r.Header.Get("Authorization"))
		if present && token != "" {
			// Hashes make the comparison constant-time in the length too.
			h := sha256.Sum256([]byte(got))
			if subtle.ConstantTimeCompare(h[:], want[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
		}
		if !present && anonymousPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
	})
}

// bearerToken parses the header as k8s.io/apiserver's bearertoken
// authenticator does: present reports whether the request offered a
// bearer token at all (another scheme, or none, is "no credentials").
func bearerToken(header string) (token string, present bool) {
	parts := strings.SplitN(strings.TrimSpace(header), " ", 3)
	if len(parts) < 2 || !strings.EqualFold(parts[0], "bearer") {
		return "", false
	}
	// An empty token is offered but invalid.
	return parts[1], true
}

// anonymousPath lists the non-resource URLs kube-apiserver lets anyone
// read (ClusterRole system:public-info-viewer).
func anonymousPath(path string) bool {
	switch path {
	case "/healthz", "/livez", "/readyz", "/version", "/version/":
		return true
	}
	return false
}
