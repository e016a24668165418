package api

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CSRPath is where an admin has the board's CA sign a client certificate
// (podctl kubeconfig). It is podboot's own, outside the Kubernetes API
// groups like the power endpoints, so only admins reach it (authorize).
const CSRPath = "/podboot/v1/certificatesigningrequests"

// ClientSigner signs a client certificate for a PEM certificate request
// with the board's CA (apiauth.Credentials.SignClient).
type ClientSigner interface {
	SignClient(csrPEM []byte, validity time.Duration, now time.Time) ([]byte, error)
}

// Limits of a certificatesigningrequest, as kube-apiserver validates one:
// expirationSeconds at least 600; a default of a year when absent.
const (
	csrMinExpirationSeconds = 600
	csrDefaultValidity      = 365 * 24 * time.Hour
	csrMaxBody              = 64 << 10
)

// csrUsages are the key usages kubernetes.io/kube-apiserver-client signs:
// "client auth", with "digital signature" and "key encipherment" allowed.
var csrUsages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}

// CSRHandler serves POST CSRPath: a certificates.k8s.io/v1
// CertificateSigningRequest for signer kubernetes.io/kube-apiserver-client
// is signed at once (the requester is an admin, who could approve it
// anyway) and answered 201 with the object, its status Approved and the
// certificate in status.certificate. spec.username and groups say who
// asked. The user and groups of the certificate are the request's
// subject (CN, O), as kube-apiserver's client signer takes them.
func CSRHandler(signer ClientSigner, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeStatus(w, &apierrors.StatusError{ErrStatus: metav1.Status{
				Status:  metav1.StatusFailure,
				Code:    http.StatusMethodNotAllowed,
				Reason:  metav1.StatusReasonMethodNotAllowed,
				Message: fmt.Sprintf("%s on %s is not supported: use POST", r.Method, CSRPath),
			}})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, csrMaxBody+1))
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("read the request body: %v", err)))
			return
		}
		if len(body) > csrMaxBody {
			writeStatus(w, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", csrMaxBody)))
			return
		}
		var csr certificatesv1.CertificateSigningRequest
		if err := json.Unmarshal(body, &csr); err != nil {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("decode the CertificateSigningRequest: %v", err)))
			return
		}
		validity, err := validateCSR(&csr)
		if err != nil {
			writeStatus(w, err)
			return
		}
		t := now()
		cert, err := signer.SignClient(csr.Spec.Request, validity, t)
		if err != nil {
			writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("certificatesigningrequest %q: %v", csr.Name, err)))
			return
		}
		if u, ok := UserFrom(r.Context()); ok {
			csr.Spec.Username, csr.Spec.Groups = u.Name, u.Groups
		}
		csr.CreationTimestamp = metav1.NewTime(t)
		csr.Status = certificatesv1.CertificateSigningRequestStatus{
			Conditions: []certificatesv1.CertificateSigningRequestCondition{{
				Type:               certificatesv1.CertificateApproved,
				Status:             corev1.ConditionTrue,
				Reason:             "AutoApproved",
				Message:            "signed by the board's CA for an admin",
				LastUpdateTime:     metav1.NewTime(t),
				LastTransitionTime: metav1.NewTime(t),
			}},
			Certificate: cert,
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(&csr) // the client went away
	})
}

// validateCSR checks what kube-apiserver's validation and the client
// signer would, and returns the certificate's validity.
func validateCSR(csr *certificatesv1.CertificateSigningRequest) (time.Duration, error) {
	var errs field.ErrorList
	if csr.Kind != "CertificateSigningRequest" || csr.APIVersion != certificatesv1.SchemeGroupVersion.String() {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("want a %s CertificateSigningRequest, not kind %q apiVersion %q", certificatesv1.SchemeGroupVersion, csr.Kind, csr.APIVersion))
	}
	if csr.Name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name or generateName is required"))
	}
	spec := field.NewPath("spec")
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName {
		errs = append(errs, field.NotSupported(spec.Child("signerName"), csr.Spec.SignerName, []string{certificatesv1.KubeAPIServerClientSignerName}))
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageClientAuth) {
		errs = append(errs, field.Required(spec.Child("usages"), `must include "client auth"`))
	}
	for i, u := range csr.Spec.Usages {
		if !slices.Contains(csrUsages, u) {
			errs = append(errs, field.NotSupported(spec.Child("usages").Index(i), u, []string{string(certificatesv1.UsageDigitalSignature), string(certificatesv1.UsageKeyEncipherment), string(certificatesv1.UsageClientAuth)}))
		}
	}
	if err := checkCSRRequest(csr.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(spec.Child("request"), "<certificate request>", err.Error()))
	}
	validity := csrDefaultValidity
	if s := csr.Spec.ExpirationSeconds; s != nil {
		if *s < csrMinExpirationSeconds {
			errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *s, fmt.Sprintf("may not specify a duration less than %d seconds (10 minutes)", csrMinExpirationSeconds)))
		}
		validity = time.Duration(*s) * time.Second
	}
	if len(errs) > 0 {
		return 0, apierrors.NewInvalid(schema.GroupKind{Group: certificatesv1.GroupName, Kind: "CertificateSigningRequest"}, csr.Name, errs)
	}
	return validity, nil
}

// checkCSRRequest parses spec.request: one PEM CERTIFICATE REQUEST, signed
// by its key, naming a user (a certificate without a CommonName
// authenticates nobody).
func checkCSRRequest(b []byte) error {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return errors.New("must be a PEM-encoded CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	if err := req.CheckSignature(); err != nil {
		return err
	}
	if req.Subject.CommonName == "" {
		return errors.New("the subject's CommonName (the user name) is empty")
	}
	return nil
}
