package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// readOnlyToken is the read-only credential the test puts on the flash
// (<flash>/api/read-only-token) before the first boot, as a person with
// the card in a reader would; the agent keeps a valid token it finds.
const readOnlyToken = "e2e0read0only0token0000000000000000000000000000000000000000000001"

// exitCode is kubectl's exit status from Board.Kubectl's error (0: nil).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("kubectl did not run: %v", err)
	return -1
}

// TestKubectlWritesAcrossReboot: the stock kubectl creates, labels and
// annotates a pod over the board's authenticated HTTPS API; a request
// without valid credentials is refused (401), and the read-only
// credentials (the flash's read-only token, a podctl kubeconfig
// --read-only certificate) read but cannot delete, label or exec (403);
// after podctl reboot the pod is back with its labels and annotation,
// from the flash.
func TestKubectlWritesAcrossReboot(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	fl, err := FindFlash(dir + "/disk.img")
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.WriteFile("/api/read-only-token", []byte(readOnlyToken+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.debugfs(true, "set_inode_field /api/read-only-token mode 0100600"); err != nil {
		t.Fatal(err)
	}

	b := Boot(t, dir, Options{})
	mustWaitAPI(t, b)
	for _, step := range []struct{ args []string }{
		{[]string{"create", "-f", "testdata/writes/e2e-kubectl.yaml"}},
		{[]string{"label", "po", "e2e-kubectl", "creation_method=manual"}},
		{[]string{"annotate", "pod", "e2e-kubectl", "mycompany.com/someannotation=foo bar"}},
	} {
		out, err := b.Kubectl(step.args...)
		verb := map[string]string{"create": "created", "label": "labeled", "annotate": "annotated"}[step.args[0]]
		if err != nil || out != "pod/e2e-kubectl "+verb+"\n" {
			t.Fatalf("kubectl %s: %q, %v; want %q", strings.Join(step.args, " "), out, err, "pod/e2e-kubectl "+verb+"\n")
		}
	}
	waitRunning := func(what string) corev1.Pod {
		t.Helper()
		var last string
		for deadline := time.Now().Add(PodsTimeout); time.Now().Before(deadline); time.Sleep(time.Second) {
			out, err := b.Kubectl("get", "pod", "e2e-kubectl", "-o", "json")
			var p corev1.Pod
			if err == nil && json.Unmarshal([]byte(out), &p) == nil {
				if Running(p) {
					return p
				}
				last = describe(p)
			} else {
				last = err.Error()
			}
		}
		t.Fatalf("e2e-kubectl not Running %s within %s (last: %s)", what, PodsTimeout, last)
		return corev1.Pod{}
	}
	checkMeta := func(p corev1.Pod) {
		t.Helper()
		if diff := cmp.Diff(map[string]string{"creation_method": "manual"}, p.Labels); diff != "" {
			t.Errorf("e2e-kubectl's labels (-want +got):\n%s", diff)
		}
		if got := p.Annotations["mycompany.com/someannotation"]; got != "foo bar" {
			t.Errorf("e2e-kubectl's annotation = %q, want %q", got, "foo bar")
		}
	}
	checkMeta(waitRunning("after kubectl create"))

	t.Run("unauthenticated", func(t *testing.T) {
		creds, err := readKubeconfig(b.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(creds.CA)
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer client.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodDelete, b.Server+"/api/v1/namespaces/default/pods/e2e-kubectl", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st metav1.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatalf("DELETE without credentials: %d, body not a Status: %v", resp.StatusCode, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || st.Kind != "Status" || st.Reason != metav1.StatusReasonUnauthorized || st.Code != 401 {
			t.Errorf("DELETE without credentials: %d %+v; want 401 and a Status with reason Unauthorized", resp.StatusCode, st)
		}
		_, err = b.Kubectl("--token", "not-the-token", "delete", "pod", "e2e-kubectl")
		if code := exitCode(t, err); code != 1 || !strings.Contains(err.Error(), "error: You must be logged in to the server") {
			t.Errorf("kubectl delete with a wrong token: exit %d, %v; want 1 and \"You must be logged in to the server\"", code, err)
		}
	})
	t.Run("read-only credentials", func(t *testing.T) {
		// A read-only client certificate from podctl kubeconfig, signed
		// by the board; its user is its CommonName.
		dash := filepath.Join(t.TempDir(), "dash.kubeconfig")
		if out, err := b.Podctl(s.podctl, "kubeconfig", "--user", "dash", "--read-only", "-o", dash); err != nil {
			t.Fatalf("podctl kubeconfig --user dash --read-only: %v\n%s", err, out)
		}
		forbidden := regexp.MustCompile(`Error from server \(Forbidden\): pods "e2e-kubectl" is forbidden: User "([^"]+)" cannot (\S+) resource "(\S+)" in API group "" in the namespace "default"`)
		for _, cred := range []struct {
			what, user string
			global     []string
		}{
			{"the flash's read-only token", "read-only", []string{"--token", readOnlyToken}},
			{"podctl kubeconfig --read-only", "dash", []string{"--kubeconfig", dash}},
		} {
			if out, err := b.Kubectl(append(cred.global, "get", "pod", "e2e-kubectl", "-o", "name")...); err != nil || out != "pod/e2e-kubectl\n" {
				t.Errorf("kubectl get with %s: %q, %v", cred.what, out, err)
			}
			for _, tt := range []struct {
				args           []string
				verb, resource string
			}{
				{[]string{"delete", "pod", "e2e-kubectl"}, "delete", "pods"},
				{[]string{"label", "pod", "e2e-kubectl", "by=read-only"}, "patch", "pods"},
				{[]string{"exec", "e2e-kubectl", "--", "true"}, "create", "pods/exec"},
			} {
				_, err := b.Kubectl(append(cred.global, tt.args...)...)
				code := exitCode(t, err)
				m := forbidden.FindStringSubmatch(errString(err))
				if code != 1 || m == nil || m[1] != cred.user || m[2] != tt.verb || m[3] != tt.resource {
					t.Errorf("kubectl %s with %s: exit %d, %v; want 1 and User %q Forbidden to %s %s", strings.Join(tt.args, " "), cred.what, code, err, cred.user, tt.verb, tt.resource)
				}
			}
		}
	})

	if _, err := b.Podctl(s.podctl, "reboot"); err != nil {
		t.Fatal(err)
	}
	bootLine := regexp.MustCompile(`Booting Linux on physical CPU`)
	for deadline := time.Now().Add(BootTimeout); len(bootLine.FindAllString(b.ConsoleText(), -1)) < 2; time.Sleep(200 * time.Millisecond) {
		if b.Exited() || time.Now().After(deadline) {
			t.Fatalf("no second boot on the console after podctl reboot (exited: %t)", b.Exited())
		}
	}
	mustWaitAPI(t, b)
	checkMeta(waitRunning("after the reboot"))
	mustPowerOff(t, b, b.PowerButton)
	mustBeClean(t, dir)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
