package api

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/store"
)

// requestLog records the writes a handler sees, as "METHOD path?query".
type requestLog struct {
	mu     sync.Mutex
	writes []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			l.mu.Lock()
			l.writes = append(l.writes, r.Method+" "+r.URL.RequestURI())
			l.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

// newOpenAPITestServer serves the fixtures with a ConfigMap and a Secret.
func newOpenAPITestServer(t *testing.T) (*httptest.Server, *requestLog) {
	t.Helper()
	st := store.New(func() time.Time { return t0 })
	populate(t, st)
	for _, obj := range []runtime.Object{
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cfg", CreationTimestamp: ago(time.Hour), Labels: map[string]string{"app": "web"}},
			Data:       map[string]string{"a": "1", "b.conf": "x\ny\n"},
			BinaryData: map[string][]byte{"bin": {1, 2, 3}},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "sec", CreationTimestamp: ago(2 * time.Hour)},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"password": []byte("hunter22"), "user": []byte("admin")},
		},
	} {
		if err := st.Put(obj); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(st, fakeLogs{}, Options{NodeName: "board-1", GitVersion: "v1.37.2"})
	s.now = func() time.Time { return t0 }
	log := &requestLog{}
	srv := httptest.NewServer(log.wrap(s))
	t.Cleanup(srv.Close)
	return srv, log
}

func writeManifest(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKubectlOpenAPI runs kubectl's explain, validation and describe of
// configmaps, secrets and namespaces against the API.
func TestKubectlOpenAPI(t *testing.T) {
	srv, log := newOpenAPITestServer(t)
	k := newKubectl(t, srv.URL)
	dir := t.TempDir()
	podUnknownField := writeManifest(t, dir, "pod.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: app
    image: busybox
    bogus: 1
`)
	eventUnknownField := writeManifest(t, dir, "event.yaml", `apiVersion: v1
kind: Event
metadata:
  name: e1
involvedObject:
  kind: Pod
  name: web
bogus: 1
`)
	deployment := writeManifest(t, dir, "deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
`)
	tests := []struct {
		name     string
		args     []string
		golden   bool
		contains []string
		lacks    []string
		wantErr  string
		// writes are the write requests kubectl must make (nil: none).
		writes []string
	}{
		{name: "explain", args: []string{"explain", "pod.spec.containers"}, contains: []string{
			"KIND:       Pod\nVERSION:    v1\n\nFIELD: containers <[]Container>\n",
			"DESCRIPTION:\n    List of containers belonging to the pod.",
			"  image\t<string>\n    Container image name.",
			"  name\t<string> -required-\n",
		}},
		{name: "explain-lease", args: []string{"explain", "leases.spec"}, contains: []string{
			"GROUP:      coordination.k8s.io\nKIND:       Lease\nVERSION:    v1\n",
			"  holderIdentity\t<string>\n",
		}},
		{name: "explain-recursive", args: []string{"explain", "cm", "--recursive"}, contains: []string{
			"KIND:       ConfigMap\n", "  binaryData\t<map[string]string>\n", "  immutable\t<boolean>\n",
		}},
		// explain over the v2 document, which kubectl reads in protobuf.
		{name: "explain-v2", args: []string{"explain", "pod.spec.restartPolicy", "--output", "plaintext-openapiv2"}, contains: []string{
			"KIND:     Pod\nVERSION:  v1\n\nFIELD:    restartPolicy <string>\n", "Restart policy for all containers within the pod.",
		}},
		{name: "explain-not-served", args: []string{"explain", "deployments"}, wantErr: `the server doesn't have a resource type "deployments"`},
		// The documents offer fieldValidation on a pod's PATCH: kubectl
		// leaves validation to the server and sends Strict.
		{
			name: "apply-strict", args: []string{"apply", "--validate=strict", "-f", podUnknownField}, wantErr: "Error from server",
			writes: []string{"POST /api/v1/namespaces/default/pods?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"},
		},
		{
			name: "create-strict", args: []string{"create", "-f", podUnknownField}, wantErr: "Error from server",
			writes: []string{"POST /api/v1/namespaces/default/pods?fieldManager=kubectl-create&fieldValidation=Strict"},
		},
		// ... so that a client-side dry run does not validate, as against
		// a cluster.
		{name: "create-dry-run-pod", args: []string{"create", "--dry-run=client", "-f", podUnknownField}, contains: []string{"pod/bad created (dry run)\n"}},
		// Events are read-only here: no PATCH is listed, so kubectl
		// validates against the v2 document itself.
		{
			name: "create-dry-run-event", args: []string{"create", "--dry-run=client", "-f", eventUnknownField},
			wantErr: `error validating "` + eventUnknownField + `": error validating data: ValidationError(Event): unknown field "bogus" in io.k8s.api.core.v1.Event; if you choose to ignore these errors, turn validation off with --validate=false`,
		},
		{
			name: "create-not-served", args: []string{"create", "-f", deployment},
			wantErr: `no matches for kind "Deployment" in version "apps/v1"`,
		},
		{name: "describe-ns", args: []string{"describe", "ns", "default"}, contains: []string{
			"Name:         default\nLabels:       <none>\nAnnotations:  <none>\nStatus:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n",
		}},
		{name: "describe-cm", args: []string{"describe", "cm", "cfg"}, contains: []string{
			"Name:         cfg\nNamespace:    default\nLabels:       app=web\nAnnotations:  <none>\n",
			// kubectl prints the keys in map order.
			"Data\n====\n", "a:\n----\n1\n\n", "b.conf:\n----\nx\ny\n\n",
			"BinaryData\n====\nbin: 3 bytes\n",
		}},
		{name: "describe-secret", args: []string{"describe", "secret", "sec"}, contains: []string{
			"Name:         sec\nNamespace:    default\n", "Type:  Opaque\n",
			// kubectl prints the keys in map order, their sizes, never their values.
			"Data\n====\n", "\npassword:  8 bytes\n", "\nuser:      5 bytes\n",
		}, lacks: []string{"hunter22", "admin"}},
		{name: "get-cm-secrets-ns", args: []string{"get", "cm,secrets,ns"}, golden: true},
		{name: "get-quota-limits", args: []string{"get", "quota,limits", "-A", "-o", "name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log.take()
			out, errOut, err := k.run(tt.args...)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(errOut, tt.wantErr) {
					t.Errorf("kubectl %v: err %v, stderr %q; want failure with %q", tt.args, err, errOut, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("kubectl %v: %v\nstdout:\n%s\nstderr:\n%s", tt.args, err, out, errOut)
			}
			if got := log.take(); !slices.Equal(got, tt.writes) {
				t.Errorf("kubectl %v wrote %q, want %q", tt.args, got, tt.writes)
			}
			if tt.golden {
				checkGolden(t, filepath.Join("testdata", "kubectl", tt.name+".golden"), out)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Errorf("kubectl %v: output lacks %q:\n%s", tt.args, want, out)
				}
			}
			for _, unwanted := range tt.lacks {
				if strings.Contains(out, unwanted) {
					t.Errorf("kubectl %v: output has %q:\n%s", tt.args, unwanted, out)
				}
			}
		})
	}
}
