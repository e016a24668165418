package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/apiauth"
)

func newCSR(t *testing.T, name, user string, groups []string) certificatesv1.CertificateSigningRequest {
	t.Helper()
	_, csr, err := apiauth.NewClientKey(user, groups)
	if err != nil {
		t.Fatal(err)
	}
	return certificatesv1.CertificateSigningRequest{
		TypeMeta:   metav1.TypeMeta{Kind: "CertificateSigningRequest", APIVersion: "certificates.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csr,
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
}

func postCSR(t *testing.T, h http.Handler, method string, body []byte) (*httptest.ResponseRecorder, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, CSRPath, bytes.NewReader(body))
	req = req.WithContext(WithUser(context.Background(), User{Name: "alice", Groups: []string{GroupAdmin, "system:authenticated"}}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec, b
}

func TestCSRHandlerSigns(t *testing.T) {
	ta := newTestAuth(t)
	t1 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	h := CSRHandler(ta.creds, func() time.Time { return t1 })
	in := newCSR(t, "dash", "dash", []string{GroupReadOnly})
	in.Spec.ExpirationSeconds = ptr(int32(3600))
	body, _ := json.Marshal(in)
	rec, b := postCSR(t, h, "POST", body)
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST = %d %s, want 201", rec.Code, b)
	}
	var got certificatesv1.CertificateSigningRequest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(got.Status.Certificate)
	if block == nil {
		t.Fatalf("status.certificate is not PEM: %q", got.Status.Certificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ta.auth.ClientCAs, CurrentTime: t1, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the signed certificate does not verify as a client's: %v", err)
	}
	if cert.Subject.CommonName != "dash" || !cmp.Equal(cert.Subject.Organization, []string{GroupReadOnly}) || !cert.NotAfter.Equal(t1.Add(time.Hour)) {
		t.Errorf("certificate CN %q O %q NotAfter %s; want dash, [%s], %s", cert.Subject.CommonName, cert.Subject.Organization, cert.NotAfter, GroupReadOnly, t1.Add(time.Hour))
	}
	got.Status.Certificate = nil
	want := in
	want.CreationTimestamp = metav1.NewTime(t1)
	want.Spec.Username, want.Spec.Groups = "alice", []string{GroupAdmin, "system:authenticated"}
	want.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "AutoApproved",
		Message: "signed by the board's CA for an admin", LastUpdateTime: metav1.NewTime(t1), LastTransitionTime: metav1.NewTime(t1),
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestCSRHandlerRefuses(t *testing.T) {
	ta := newTestAuth(t)
	noCAKey := *ta.creds
	noCAKey.CAKey = nil
	good := newCSR(t, "dash", "dash", nil)
	invalid := func(msg string, causes ...metav1.StatusCause) metav1.Status {
		return metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: msg, Reason: metav1.StatusReasonInvalid, Code: 422,
			Details: &metav1.StatusDetails{Name: "dash", Group: "certificates.k8s.io", Kind: "CertificateSigningRequest", Causes: causes},
		}
	}
	tests := []struct {
		name   string
		method string
		signer ClientSigner
		edit   func(*certificatesv1.CertificateSigningRequest)
		body   string // instead of the edited request
		want   metav1.Status
	}{
		{name: "GET", method: "GET", want: metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: "GET on /podboot/v1/certificatesigningrequests is not supported: use POST", Reason: metav1.StatusReasonMethodNotAllowed, Code: 405}},
		{name: "not JSON", body: "{", want: metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: "decode the CertificateSigningRequest: unexpected end of JSON input", Reason: metav1.StatusReasonBadRequest, Code: 400}},
		{name: "another kind", edit: func(c *certificatesv1.CertificateSigningRequest) { c.Kind = "Pod" }, want: metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: `want a certificates.k8s.io/v1 CertificateSigningRequest, not kind "Pod" apiVersion "certificates.k8s.io/v1"`, Reason: metav1.StatusReasonBadRequest, Code: 400}},
		{name: "another signer", edit: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "kubernetes.io/kubelet-serving" },
			want: invalid(`CertificateSigningRequest.certificates.k8s.io "dash" is invalid: spec.signerName: Unsupported value: "kubernetes.io/kubelet-serving": supported values: "kubernetes.io/kube-apiserver-client"`,
				metav1.StatusCause{Type: metav1.CauseTypeFieldValueNotSupported, Message: `Unsupported value: "kubernetes.io/kubelet-serving": supported values: "kubernetes.io/kube-apiserver-client"`, Field: "spec.signerName"})},
		{name: "server auth", edit: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}
		}, want: invalid(`CertificateSigningRequest.certificates.k8s.io "dash" is invalid: [spec.usages: Required value: must include "client auth", spec.usages[0]: Unsupported value: "server auth": supported values: "digital signature", "key encipherment", "client auth"]`,
			metav1.StatusCause{Type: metav1.CauseTypeFieldValueRequired, Message: `Required value: must include "client auth"`, Field: "spec.usages"},
			metav1.StatusCause{Type: metav1.CauseTypeFieldValueNotSupported, Message: `Unsupported value: "server auth": supported values: "digital signature", "key encipherment", "client auth"`, Field: "spec.usages[0]"})},
		{name: "too short", edit: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptr(int32(599)) },
			want: invalid(`CertificateSigningRequest.certificates.k8s.io "dash" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)`,
				metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Message: `Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)`, Field: "spec.expirationSeconds"})},
		{name: "not a request", edit: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("x") },
			want: invalid(`CertificateSigningRequest.certificates.k8s.io "dash" is invalid: spec.request: Invalid value: "<certificate request>": must be a PEM-encoded CERTIFICATE REQUEST`,
				metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Message: `Invalid value: "<certificate request>": must be a PEM-encoded CERTIFICATE REQUEST`, Field: "spec.request"})},
		{name: "no CA key", signer: &noCAKey, want: metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Message: `certificatesigningrequest "dash": sign client certificate for "dash": no CA key (ca.key is not on the flash)`, Reason: metav1.StatusReasonServiceUnavailable, Code: 503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr := good
			csr.Spec.Usages = append([]certificatesv1.KeyUsage(nil), good.Spec.Usages...)
			if tt.edit != nil {
				tt.edit(&csr)
			}
			body, _ := json.Marshal(csr)
			if tt.body != "" {
				body = []byte(tt.body)
			}
			signer := tt.signer
			if signer == nil {
				signer = ta.creds
			}
			method := tt.method
			if method == "" {
				method = "POST"
			}
			rec, b := postCSR(t, CSRHandler(signer, nil), method, body)
			if rec.Code != int(tt.want.Code) {
				t.Fatalf("code %d %s, want %d", rec.Code, b, tt.want.Code)
			}
			if diff := cmp.Diff(tt.want, decode[metav1.Status](t, b)); diff != "" {
				t.Errorf("Status (-want +got):\n%s", diff)
			}
		})
	}
}
