package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	serprotobuf "k8s.io/apimachinery/pkg/runtime/serializer/protobuf"

	"github.com/podboot/podboot/agent/apiauth"
)

const (
	testToken         = "0123456789abcdef"
	testReadOnlyToken = "fedcba9876543210"
)

// unauthorized is kube-apiserver's body for a failed authentication.
var unauthorized = metav1.Status{
	TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
	Status:   metav1.StatusFailure,
	Message:  "Unauthorized",
	Reason:   metav1.StatusReasonUnauthorized,
	Code:     401,
}

// testAuth is a CA and the Auth of a board with it: the admin and
// read-only tokens, and client certificates of the CA.
type testAuth struct {
	creds *apiauth.Credentials
	auth  Auth
}

func newTestAuth(t *testing.T) testAuth {
	t.Helper()
	creds, err := apiauth.Generate([]string{"board-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := creds.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	return testAuth{creds: creds, auth: Auth{
		Tokens: []Token{
			{Token: testToken, User: User{Name: "admin", Groups: []string{GroupAdmin}}},
			{Token: testReadOnlyToken, User: User{Name: "read-only", Groups: []string{GroupReadOnly}}},
		},
		ClientCAs: pool,
	}}
}

// clientCert is a client certificate of creds' CA for user in groups,
// valid for validity from signed.
func clientCert(t *testing.T, creds *apiauth.Credentials, user string, groups []string, signed time.Time, validity time.Duration) tls.Certificate {
	t.Helper()
	key, csr, err := apiauth.NewClientKey(user, groups)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := creds.SignClient(csr, validity, signed)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// secureServer serves next behind Secure over TLS, asking for client
// certificates as the board's HTTPS listener does.
func secureServer(t *testing.T, next http.Handler, a Auth) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(Secure(next, a))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// clientWith is srv's client presenting cert (if any).
func clientWith(srv *httptest.Server, cert *tls.Certificate) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: tr}
}

// whoami answers 200 with the user Secure put into the context.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	u, ok := UserFrom(r.Context())
	fmt.Fprintf(w, "%v %s %v", ok, u.Name, u.Groups)
})

// Who may send a request: a credential of level L may send any request
// of level L or below.
type level int

const (
	public        level = iota // anyone, even without credentials
	authenticated              // any authenticated user (discovery)
	reader                     // podboot:read-only and admins
	admin                      // system:masters only
)

func TestSecureAuthorization(t *testing.T) {
	ta := newTestAuth(t)
	srv := secureServer(t, whoami, ta.auth)
	now := time.Now()
	aliceCert := clientCert(t, ta.creds, "alice", []string{GroupAdmin}, now, time.Hour)
	dashCert := clientCert(t, ta.creds, "dash", []string{GroupReadOnly}, now, time.Hour)
	plainCert := clientCert(t, ta.creds, "plain", []string{"developers"}, now, time.Hour)
	creds := []struct {
		name, user string
		groups     string // as the handler prints them
		level      level
		token      string
		cert       *tls.Certificate
	}{
		{name: "no credentials", level: public},
		{name: "admin token", user: "admin", groups: "[system:masters system:authenticated]", level: admin, token: testToken},
		{name: "admin certificate", user: "alice", groups: "[system:masters system:authenticated]", level: admin, cert: &aliceCert},
		{name: "read-only token", user: "read-only", groups: "[podboot:read-only system:authenticated]", level: reader, token: testReadOnlyToken},
		{name: "read-only certificate", user: "dash", groups: "[podboot:read-only system:authenticated]", level: reader, cert: &dashCert},
		{name: "certificate without a known group", user: "plain", groups: "[developers system:authenticated]", level: authenticated, cert: &plainCert},
	}
	pods := metav1.StatusDetails{Kind: "pods"}
	named := func(d metav1.StatusDetails, name string) *metav1.StatusDetails { d.Name = name; return &d }
	requests := []struct {
		method, path string
		level        level
		// forbid is the 403's message, %[1]q the user; details its details.
		forbid  string
		details *metav1.StatusDetails
	}{
		{"GET", "/healthz", public, "", nil},
		{"GET", "/livez", public, "", nil},
		{"GET", "/readyz", public, "", nil},
		{"GET", "/version", public, "", nil},
		{"HEAD", "/healthz", public, "", nil},
		{"GET", "/api", authenticated, "", nil},
		{"HEAD", "/metrics", reader, `forbidden: User %[1]q cannot head path "/metrics"`, &metav1.StatusDetails{}},
		{"GET", "/api/v1", authenticated, "", nil},
		{"GET", "/apis/coordination.k8s.io/v1", authenticated, "", nil},
		{"GET", "/openapi/v3", authenticated, "", nil},
		{"GET", "/api/v1/namespaces/default/pods", reader,
			`pods is forbidden: User %[1]q cannot list resource "pods" in API group "" in the namespace "default"`, &pods},
		{"GET", "/api/v1/namespaces/default/pods?watch=true", reader,
			`pods is forbidden: User %[1]q cannot watch resource "pods" in API group "" in the namespace "default"`, &pods},
		{"GET", "/api/v1/namespaces/default/pods/web", reader,
			`pods "web" is forbidden: User %[1]q cannot get resource "pods" in API group "" in the namespace "default"`, named(pods, "web")},
		{"GET", "/api/v1/namespaces/default/pods/web/log", reader,
			`pods "web" is forbidden: User %[1]q cannot get resource "pods/log" in API group "" in the namespace "default"`, named(pods, "web")},
		{"GET", "/api/v1/pods", reader,
			`pods is forbidden: User %[1]q cannot list resource "pods" in API group "" at the cluster scope`, &pods},
		{"GET", "/api/v1/nodes/board-1", reader,
			`nodes "board-1" is forbidden: User %[1]q cannot get resource "nodes" in API group "" at the cluster scope`, &metav1.StatusDetails{Name: "board-1", Kind: "nodes"}},
		{"GET", "/api/v1/namespaces/default/secrets", reader,
			`secrets is forbidden: User %[1]q cannot list resource "secrets" in API group "" in the namespace "default"`, &metav1.StatusDetails{Kind: "secrets"}},
		{"GET", "/apis/metrics.k8s.io/v1beta1/nodes", reader,
			`nodes.metrics.k8s.io is forbidden: User %[1]q cannot list resource "nodes" in API group "metrics.k8s.io" at the cluster scope`, &metav1.StatusDetails{Group: "metrics.k8s.io", Kind: "nodes"}},
		{"GET", "/metrics", reader, `forbidden: User %[1]q cannot get path "/metrics"`, &metav1.StatusDetails{}},
		{"GET", "/pods", reader, `forbidden: User %[1]q cannot get path "/pods"`, &metav1.StatusDetails{}},
		{"POST", "/api/v1/namespaces/default/pods", admin,
			`pods is forbidden: User %[1]q cannot create resource "pods" in API group "" in the namespace "default"`, &pods},
		{"PUT", "/api/v1/namespaces/default/pods/web", admin,
			`pods "web" is forbidden: User %[1]q cannot update resource "pods" in API group "" in the namespace "default"`, named(pods, "web")},
		{"PATCH", "/api/v1/namespaces/default/pods/web", admin,
			`pods "web" is forbidden: User %[1]q cannot patch resource "pods" in API group "" in the namespace "default"`, named(pods, "web")},
		{"DELETE", "/api/v1/namespaces/default/pods/web", admin,
			`pods "web" is forbidden: User %[1]q cannot delete resource "pods" in API group "" in the namespace "default"`, named(pods, "web")},
		{"DELETE", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", admin,
			`pods is forbidden: User %[1]q cannot deletecollection resource "pods" in API group "" in the namespace "default"`, &pods},
		{"DELETE", "/api/v1/namespaces/custom", admin,
			`namespaces "custom" is forbidden: User %[1]q cannot delete resource "namespaces" in API group "" in the namespace "custom"`, &metav1.StatusDetails{Name: "custom", Kind: "namespaces"}},
		{"POST", "/api/v1/namespaces/default/pods/web/exec?command=sh", admin,
			`pods "web" is forbidden: User %[1]q cannot create resource "pods/exec" in API group "" in the namespace "default"`, named(pods, "web")},
		// kubectl 1.30+ opens exec over a WebSocket: a GET. The API server
		// authorizes "get" first, then "create" (AuthorizePodWebsocketUpgradeCreatePermission).
		{"GET", "/api/v1/namespaces/default/pods/web/exec?command=sh", admin,
			`pods "web" is forbidden: User %[1]q cannot get resource "pods/exec" in API group "" in the namespace "default"`, named(pods, "web")},
		{"GET", "/api/v1/namespaces/default/pods/web/attach", admin,
			`pods "web" is forbidden: User %[1]q cannot get resource "pods/attach" in API group "" in the namespace "default"`, named(pods, "web")},
		{"POST", "/api/v1/namespaces/default/pods/web/portforward", admin,
			`pods "web" is forbidden: User %[1]q cannot create resource "pods/portforward" in API group "" in the namespace "default"`, named(pods, "web")},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/board-1", admin,
			`leases.coordination.k8s.io "board-1" is forbidden: User %[1]q cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease"`,
			&metav1.StatusDetails{Name: "board-1", Group: "coordination.k8s.io", Kind: "leases"}},
		{"POST", PowerOffPath, admin, `forbidden: User %[1]q cannot post path "/podboot/v1/poweroff"`, &metav1.StatusDetails{}},
		{"POST", RebootPath, admin, `forbidden: User %[1]q cannot post path "/podboot/v1/reboot"`, &metav1.StatusDetails{}},
		{"GET", PowerOffPath, admin, `forbidden: User %[1]q cannot get path "/podboot/v1/poweroff"`, &metav1.StatusDetails{}},
		{"POST", CSRPath, admin, `forbidden: User %[1]q cannot post path "/podboot/v1/certificatesigningrequests"`, &metav1.StatusDetails{}},
		{"POST", "/healthz", admin, `forbidden: User %[1]q cannot post path "/healthz"`, &metav1.StatusDetails{}},
	}
	for _, c := range creds {
		client := clientWith(srv, c.cert)
		for _, r := range requests {
			t.Run(c.name+"/"+r.method+" "+r.path, func(t *testing.T) {
				req, err := http.NewRequest(r.method, srv.URL+r.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				var want metav1.Status
				switch {
				case c.level >= r.level || c.level == public && r.level == public:
					if resp.StatusCode != 200 {
						t.Fatalf("%s %s = %d %s, want 200", r.method, r.path, resp.StatusCode, body)
					}
					wantBody := fmt.Sprintf("true %s %s", c.user, c.groups)
					if c.level == public {
						wantBody = "false  []"
					}
					if r.method != "HEAD" && string(body) != wantBody {
						t.Errorf("the handler saw %q, want %q", body, wantBody)
					}
					return
				case c.level == public:
					want = unauthorized
				default:
					want = metav1.Status{
						TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
						Status:   metav1.StatusFailure,
						Message:  fmt.Sprintf(r.forbid, c.user),
						Reason:   metav1.StatusReasonForbidden,
						Details:  r.details,
						Code:     403,
					}
				}
				if resp.StatusCode != int(want.Code) {
					t.Fatalf("%s %s = %d %s, want %d", r.method, r.path, resp.StatusCode, body, want.Code)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				if r.method == "HEAD" {
					return // no body
				}
				if diff := cmp.Diff(want, decode[metav1.Status](t, body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// Bad credentials are refused before authorization, even on the public
// paths; a good credential beside a bad one wins, as with kube-apiserver's
// union of authenticators.
func TestSecureAuthentication(t *testing.T) {
	ta := newTestAuth(t)
	srv := secureServer(t, whoami, ta.auth)
	now := time.Now()
	other := newTestAuth(t)
	otherCA := clientCert(t, other.creds, "mallory", []string{GroupAdmin}, now, time.Hour)
	expired := clientCert(t, ta.creds, "old", []string{GroupAdmin}, now.Add(-48*time.Hour), 12*time.Hour)
	noCN := certWithoutCN(t, ta.creds)
	serverCert := tlsPair(t, ta.creds.Cert, ta.creds.Key) // serverAuth only, no clientAuth
	tests := []struct {
		name, path, auth string
		cert             *tls.Certificate
		wantCode         int
		wantUser         string
	}{
		{name: "no token on pods", path: "/api/v1/pods", wantCode: 401},
		{name: "no token on discovery", path: "/api", wantCode: 401},
		{name: "no token on kubelet pods", path: "/pods", wantCode: 401},
		{name: "no token on poweroff", path: "/podboot/v1/poweroff", wantCode: 401},
		{name: "no token on an unknown path", path: "/nope", wantCode: 401},
		{name: "wrong token", path: "/api/v1/pods", auth: "Bearer wrong", wantCode: 401},
		{name: "token prefix", path: "/api/v1/pods", auth: "Bearer " + testToken[:8], wantCode: 401},
		{name: "token with suffix", path: "/api/v1/pods", auth: "Bearer " + testToken + "x", wantCode: 401},
		{name: "empty bearer", path: "/api/v1/pods", auth: "Bearer ", wantCode: 401},
		{name: "empty bearer is no credentials", path: "/healthz", auth: "Bearer ", wantCode: 200},
		{name: "basic auth", path: "/api/v1/pods", auth: "Basic dXNlcjpwYXNz", wantCode: 401},
		{name: "right token", path: "/api/v1/pods", auth: "Bearer " + testToken, wantCode: 200, wantUser: "admin"},
		{name: "scheme is case-insensitive", path: "/api/v1/pods", auth: "bearer " + testToken, wantCode: 200, wantUser: "admin"},
		{name: "another scheme is anonymous", path: "/healthz", auth: "Basic dXNlcjpwYXNz", wantCode: 200},
		{name: "wrong token on healthz", path: "/healthz", auth: "Bearer wrong", wantCode: 401},
		{name: "right token on healthz", path: "/healthz", auth: "Bearer " + testToken, wantCode: 200, wantUser: "admin"},
		{name: "certificate of another CA", path: "/api/v1/pods", cert: &otherCA, wantCode: 401},
		{name: "certificate of another CA on healthz", path: "/healthz", cert: &otherCA, wantCode: 401},
		{name: "certificate of another CA and the token", path: "/api/v1/pods", cert: &otherCA, auth: "Bearer " + testToken, wantCode: 200, wantUser: "admin"},
		{name: "expired certificate", path: "/api/v1/pods", cert: &expired, wantCode: 401},
		{name: "server certificate as a client's", path: "/api/v1/pods", cert: &serverCert, wantCode: 401},
		{name: "certificate without a CommonName", path: "/api/v1/pods", cert: &noCN, wantCode: 401},
		{name: "certificate without a CommonName on healthz", path: "/healthz", cert: &noCN, wantCode: 200},
		{name: "read-only certificate and the admin token", path: "/api/v1/pods", cert: ptr(clientCert(t, ta.creds, "dash", []string{GroupReadOnly}, now, time.Hour)),
			auth: "Bearer " + testToken, wantCode: 200, wantUser: "dash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := clientWith(srv, tt.cert).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("GET %s with %q = %d %s, want %d", tt.path, tt.auth, resp.StatusCode, body, tt.wantCode)
			}
			if tt.wantCode == 200 {
				if got, _, _ := strings.Cut(strings.TrimPrefix(string(body), "true "), " "); tt.wantUser != "" && got != tt.wantUser {
					t.Errorf("user = %q (%s), want %q", got, body, tt.wantUser)
				}
				return
			}
			if diff := cmp.Diff(unauthorized, decode[metav1.Status](t, body)); diff != "" {
				t.Errorf("401 body (-want +got):\n%s", diff)
			}
		})
	}
}

// The handler never sees the credentials, and over plain HTTP (vsock)
// the tokens work the same.
func TestSecureWithoutTLS(t *testing.T) {
	ta := newTestAuth(t)
	auth := ta.auth
	auth.ClientCAs = nil
	var sawAuthorization string
	srv := httptest.NewServer(Secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuthorization = r.Header.Get("Authorization")
		whoami(w, r)
	}), auth))
	defer srv.Close()
	for _, tc := range []struct {
		method, token string
		want          int
	}{
		{"GET", testReadOnlyToken, 200},
		{"DELETE", testReadOnlyToken, 403},
		{"DELETE", testToken, 200},
		{"GET", "", 401},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+"/api/v1/namespaces/default/pods/web", nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s with token %q over plain HTTP = %d, want %d", tc.method, tc.token, resp.StatusCode, tc.want)
		}
	}
	if sawAuthorization != "" {
		t.Errorf("the handler saw Authorization %q; Secure should remove it", sawAuthorization)
	}
}

func TestSecureNoTokensRejectsAll(t *testing.T) {
	srv := httptest.NewServer(Secure(whoami, Auth{Tokens: []Token{{Token: "", User: User{Name: "admin", Groups: []string{GroupAdmin}}}}}))
	defer srv.Close()
	for _, auth := range []string{"Bearer ", "Bearer  x", ""} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/pods", nil)
		req.Header.Set("Authorization", auth)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("an empty configured token and Authorization %q: %d, want 401", auth, resp.StatusCode)
		}
	}
}

func TestNewRequestInfo(t *testing.T) {
	tests := []struct {
		method, url string
		want        requestInfo
	}{
		{"GET", "/api/v1/namespaces/default/pods", requestInfo{isResource: true, verb: "list", apiVersion: "v1", namespace: "default", resource: "pods"}},
		{"HEAD", "/api/v1/namespaces/default/pods/x", requestInfo{isResource: true, verb: "get", apiVersion: "v1", namespace: "default", resource: "pods", name: "x"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=1", requestInfo{isResource: true, verb: "watch", apiVersion: "v1", namespace: "default", resource: "pods"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=", requestInfo{isResource: true, verb: "watch", apiVersion: "v1", namespace: "default", resource: "pods"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=false", requestInfo{isResource: true, verb: "list", apiVersion: "v1", namespace: "default", resource: "pods"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=0", requestInfo{isResource: true, verb: "list", apiVersion: "v1", namespace: "default", resource: "pods"}},
		// kubectl get pod x -w
		{"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dx&watch=true", requestInfo{isResource: true, verb: "watch", apiVersion: "v1", namespace: "default", resource: "pods", name: "x"}},
		{"GET", "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3D..", requestInfo{isResource: true, verb: "list", apiVersion: "v1", namespace: "default", resource: "pods"}},
		{"GET", "/api/v1/watch/namespaces/default/pods", requestInfo{isResource: true, verb: "watch", apiVersion: "v1", namespace: "default", resource: "pods"}},
		{"GET", "/api/v1/watch/namespaces/default/pods/x", requestInfo{isResource: true, verb: "watch", apiVersion: "v1", namespace: "default", resource: "pods", name: "x"}},
		{"GET", "/api/v1/proxy/namespaces/default/pods/x/a/b", requestInfo{isResource: true, verb: "proxy", apiVersion: "v1", namespace: "default", resource: "pods", name: "x"}},
		{"PUT", "/api/v1/namespaces/x/finalize", requestInfo{isResource: true, verb: "update", apiVersion: "v1", namespace: "x", resource: "namespaces", name: "x", subresource: "finalize"}},
		{"PUT", "/api/v1/namespaces/default/pods/x/status", requestInfo{isResource: true, verb: "update", apiVersion: "v1", namespace: "default", resource: "pods", name: "x", subresource: "status"}},
		{"DELETE", "/api/v1/namespaces", requestInfo{isResource: true, verb: "deletecollection", apiVersion: "v1", resource: "namespaces"}},
		{"OPTIONS", "/api/v1/pods", requestInfo{isResource: true, verb: "", apiVersion: "v1", resource: "pods"}},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", requestInfo{isResource: true, verb: "list", apiGroup: "coordination.k8s.io", apiVersion: "v1", namespace: "kube-node-lease", resource: "leases"}},
		{"GET", "/apis/coordination.k8s.io/v1", requestInfo{verb: "get"}},
		{"GET", "/api/v1", requestInfo{verb: "get"}},
		{"POST", "/podboot/v1/reboot", requestInfo{verb: "post"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.path = u.Path
			got := newRequestInfo(&http.Request{Method: tt.method, URL: u})
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(requestInfo{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func tlsPair(t *testing.T, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// certWithoutCN is a client certificate of creds' CA with an empty
// subject, which kube-apiserver's x509 authenticator does not take for a
// user (apiauth refuses to sign one, so it is made here).
func certWithoutCN(t *testing.T, creds *apiauth.Credentials) tls.Certificate {
	t.Helper()
	ca := tlsPair(t, creds.CACert, creds.CAKey)
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// A SelfSubjectAccessReview is answered with the authorizer, as JSON or
// protobuf; one that asks nothing is the API server's 422.
func TestSelfSubjectAccessReview(t *testing.T) {
	ta := newTestAuth(t)
	srv := secureServer(t, whoami, ta.auth)
	scheme := runtime.NewScheme()
	if err := authorizationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	protobuf := serprotobuf.NewSerializer(scheme, scheme)
	review := func(ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) *authorizationv1.SelfSubjectAccessReview {
		return &authorizationv1.SelfSubjectAccessReview{
			TypeMeta: metav1.TypeMeta{Kind: "SelfSubjectAccessReview", APIVersion: "authorization.k8s.io/v1"},
			Spec:     authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra, NonResourceAttributes: nra},
		}
	}
	tests := []struct {
		name, token string
		review      *authorizationv1.SelfSubjectAccessReview
		proto       bool
		wantCode    int
		wantAllowed bool
	}{
		{"read-only lists pods", testReadOnlyToken, review(&authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"}, nil), false, 201, true},
		{"read-only lists pods, protobuf", testReadOnlyToken, review(&authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "default"}, nil), true, 201, true},
		{"read-only deletes pods", testReadOnlyToken, review(&authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: "default", Name: "web"}, nil), true, 201, false},
		{"read-only execs", testReadOnlyToken, review(&authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "exec"}, nil), false, 201, false},
		{"read-only reboots", testReadOnlyToken, review(nil, &authorizationv1.NonResourceAttributes{Verb: "post", Path: RebootPath}), false, 201, false},
		{"admin reboots", testToken, review(nil, &authorizationv1.NonResourceAttributes{Verb: "post", Path: RebootPath}), false, 201, true},
		{"asks nothing", testToken, review(nil, nil), false, 422, false},
		{"asks both", testToken, review(&authorizationv1.ResourceAttributes{Verb: "get"}, &authorizationv1.NonResourceAttributes{Verb: "get"}), false, 422, false},
		{"no credentials", "", review(nil, &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/healthz"}), false, 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body bytes.Buffer
			contentType := "application/json"
			if tt.proto {
				contentType = runtime.ContentTypeProtobuf
				if err := protobuf.Encode(tt.review, &body); err != nil {
					t.Fatal(err)
				}
			} else if err := json.NewEncoder(&body).Encode(tt.review); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", srv.URL+selfSubjectAccessReviewPath, &body)
			req.Header.Set("Content-Type", contentType)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("POST = %d %s, want %d", resp.StatusCode, b, tt.wantCode)
			}
			if tt.wantCode != 201 {
				return
			}
			got := decode[authorizationv1.SelfSubjectAccessReview](t, b)
			if got.Status.Allowed != tt.wantAllowed || !cmp.Equal(got.Spec, tt.review.Spec) {
				t.Errorf("answer %s, want allowed %t and the same spec", b, tt.wantAllowed)
			}
		})
	}
}
