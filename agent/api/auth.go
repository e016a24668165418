package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated user, as kube-apiserver's user.Info: the name
// a write is recorded under, and the groups authorization reads.
type User struct {
	Name   string
	Groups []string
}

type userKey struct{}

// WithUser returns ctx carrying u, as Secure leaves it for the handlers.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user Secure authenticated for the request; false on
// a listener without authentication (devnode's loopback --listen) and for
// an anonymous request to a public path.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// Token is a bearer token and the user it authenticates, as a line of
// kube-apiserver's --token-auth-file.
type Token struct {
	Token string
	User  User
}

// Auth is what Secure accepts.
type Auth struct {
	// Tokens are the bearer tokens accepted; an empty token is ignored.
	Tokens []Token
	// ClientCAs verify client certificates, as kube-apiserver's
	// --client-ca-file: the user is the certificate's CommonName, the
	// groups its Organizations. nil accepts none (a listener without
	// TLS, such as vsock, has none to offer anyway).
	ClientCAs *x509.CertPool
	// Log receives why a client certificate was refused; nil discards.
	Log *slog.Logger
	// Now is the clock certificates are checked against; nil is
	// time.Now.
	Now func() time.Time
}

// Secure wraps an API handler with kube-apiserver's authentication and
// authorization (docs/api.md, "Authentication and authorization").
//
// Authentication tries the client certificate, then the bearer token; the
// first that succeeds names the user, who is put into the request's
// context (UserFrom). A request without credentials may read only the
// probes and /version (kube-apiserver's system:public-info-viewer); any
// other, and any request whose credentials are wrong (even to a probe:
// kube-apiserver rejects bad credentials before it authorizes), is 401
// with kube-apiserver's Status, which kubectl prints as "error: You must
// be logged in to the server (Unauthorized)".
//
// Authorization then allows what the user's groups allow (authorize); a
// refusal is 403 with kube-apiserver's Status and message. Every
// authenticated user may create a SelfSubjectReview and a
// SelfSubjectAccessReview (kubectl auth whoami, kubectl auth can-i),
// answered here with the same authorizer.
func Secure(next http.Handler, a Auth) http.Handler {
	type digest struct {
		sum  [sha256.Size]byte
		user User
	}
	var tokens []digest
	for _, t := range a.Tokens {
		if t.Token != "" {
			tokens = append(tokens, digest{sha256.Sum256([]byte(t.Token)), withAuthenticated(t.User)})
		}
	}
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := a.Now
	if now == nil {
		now = time.Now
	}
	checkToken := func(token string) (User, bool) {
		// Hashes make the comparison constant-time in the length too;
		// every token is compared, so the time does not say which matched.
		h := sha256.Sum256([]byte(token))
		var (
			found User
			ok    bool
		)
		for _, t := range tokens {
			if subtle.ConstantTimeCompare(h[:], t.sum[:]) == 1 {
				found, ok = t.user, true
			}
		}
		return found, ok
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, authenticated, err := clientCertUser(r, a.ClientCAs, now())
		if err != nil {
			log.Warn("client certificate refused", "remote", r.RemoteAddr, "err", err)
		}
		if !authenticated {
			if token, offered := bearerToken(r.Header.Get("Authorization")); offered {
				if u, authenticated = checkToken(token); !authenticated {
					err = errors.New("invalid bearer token")
				}
			}
		}
		if !authenticated {
			if err == nil && anonymousPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				next.ServeHTTP(w, r)
				return
			}
			writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
			return
		}
		// As kube-apiserver: the credentials go no further than here.
		r.Header.Del("Authorization")
		// Any authenticated user may ask who it is and what it may do.
		if serveSelfReview(w, r, u) {
			return
		}
		if info := newRequestInfo(r); !authorize(u, info) {
			writeStatus(w, forbidden(u, info))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
	})
}

// withAuthenticated adds system:authenticated to the user's groups.
func withAuthenticated(u User) User {
	if !slices.Contains(u.Groups, groupAuthenticated) {
		u.Groups = append(slices.Clip(u.Groups), groupAuthenticated)
	}
	return u
}

// clientCertUser is kube-apiserver's x509 authenticator
// (k8s.io/apiserver/pkg/authentication/request/x509): a certificate the
// CA verifies for client authentication, with a CommonName, is the user
// CN in the groups O. No certificate, or no CAs, is no credentials; a
// certificate without a CommonName is none either, as there.
func clientCertUser(r *http.Request, cas *x509.CertPool, now time.Time) (User, bool, error) {
	if cas == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return User{}, false, nil
	}
	certs := r.TLS.PeerCertificates
	opts := x509.VerifyOptions{
		Roots:       cas,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return User{}, false, fmt.Errorf("verifying certificate %s failed: %w", certIdentifier(certs[0]), err)
	}
	if certs[0].Subject.CommonName == "" {
		return User{}, false, nil
	}
	return withAuthenticated(User{Name: certs[0].Subject.CommonName, Groups: slices.Clone(certs[0].Subject.Organization)}), true, nil
}

// certIdentifier names a certificate in a log as kube-apiserver does.
func certIdentifier(c *x509.Certificate) string {
	return fmt.Sprintf("SN=%s, SKID=%X, AKID=%X, CN=%q, O=%q, NotAfter=%s", c.SerialNumber, c.SubjectKeyId, c.AuthorityKeyId,
		c.Subject.CommonName, c.Subject.Organization, c.NotAfter.UTC().Format(time.RFC3339))
}

// bearerToken parses the header as k8s.io/apiserver's bearertoken
// authenticator does: offered reports whether the request offered a
// non-empty bearer token at all; another scheme, none, or an empty token
// is "no credentials".
func bearerToken(header string) (token string, offered bool) {
	parts := strings.SplitN(strings.TrimSpace(header), " ", 3)
	if len(parts) < 2 || !strings.EqualFold(parts[0], "bearer") || parts[1] == "" {
		return "", false
	}
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
