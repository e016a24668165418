package nodetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/podboot/podboot/internal/testenv"
)

// kubectlRun is what one run of the stock kubectl printed and its exit
// status.
type kubectlRun struct {
	stdout, stderr string
	code           int
}

// kubectlIn runs the stock kubectl against n with stdin and extra
// environment, and fails t only when kubectl could not be run at all: a
// non-zero exit is a result the caller checks.
func (n *node) kubectlIn(t testing.TB, stdin string, env []string, args ...string) kubectlRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	full := append([]string{"--server", n.url, "--cache-dir", n.kube}, args...)
	cmd := n.command(ctx, "kubectl", full...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := kubectlRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("kubectl %s: %v (stdout %q, stderr %q)", strings.Join(args, " "), err, r.stdout, r.stderr)
	}
	return r
}

func (n *node) kc(t testing.TB, args ...string) kubectlRun {
	t.Helper()
	return n.kubectlIn(t, "", nil, args...)
}

// kubectlStep is one command of the tutorial and what a real cluster
// prints for it: stdout and stderr exactly, and the exit status.
type kubectlStep struct {
	args           []string
	stdout, stderr string
	code           int
}

// runSteps runs the steps in order, each as a subtest named by its
// command line; a step that fails stops the rest (they build on it).
func (n *node) runSteps(t *testing.T, steps []kubectlStep) {
	t.Helper()
	for _, s := range steps {
		ok := t.Run(strings.Join(s.args, " "), func(t *testing.T) {
			got := n.kc(t, s.args...)
			want := kubectlRun{stdout: s.stdout, stderr: s.stderr, code: s.code}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(kubectlRun{})); diff != "" {
				t.Errorf("kubectl %s (-want +got):\n%s\nagent log:\n%s", strings.Join(s.args, " "), diff, tail(n.stderr.String(), 30))
			}
		})
		if !ok {
			t.FailNow()
		}
	}
}

// mustKc runs kubectl and fails t unless it exits 0.
func (n *node) mustKc(t testing.TB, args ...string) string {
	t.Helper()
	r := n.kc(t, args...)
	if r.code != 0 {
		t.Fatalf("kubectl %s: exit %d\nstdout: %s\nstderr: %s\nagent log:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr, tail(n.stderr.String(), 30))
	}
	return r.stdout
}

// podIn reads a pod through kubectl, managedFields included (kubectl
// leaves them out by default), failing t if it is not there.
func (n *node) podIn(t testing.TB, ns, name string) *corev1.Pod {
	t.Helper()
	var p corev1.Pod
	if err := yaml.Unmarshal([]byte(n.mustKc(t, "get", "pod", name, "-n", ns, "-o", "json", "--show-managed-fields")), &p); err != nil {
		t.Fatalf("decode pod %s/%s: %v", ns, name, err)
	}
	return &p
}

// waitRunningIn waits for a pod of any namespace to run, failing t.
func (n *node) waitRunningIn(t testing.TB, ns, name string) *corev1.Pod {
	t.Helper()
	return n.waitPodIn(t, ns, name, 90*time.Second, "Running", running)
}

// flashDoc is one document of a manifest file on the flash.
type flashDoc struct {
	file string // relative to the flash's pods directory
	meta metav1.PartialObjectMetadata
	raw  []byte
}

func (d flashDoc) key() string {
	ns := d.meta.Namespace
	if ns == "" && d.meta.Kind != "Namespace" {
		ns = "default"
	}
	return d.meta.Kind + " " + ns + "/" + d.meta.Name
}

// flashDocs reads every manifest document under the flash's pods
// directory (any depth; hidden files, an editor's or a writer's temp
// files, are skipped), as the agent would find them after a power cut.
func flashDocs(t testing.TB, flash string) []flashDoc {
	t.Helper()
	root := filepath.Join(flash, "pods")
	var docs []flashDoc
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(path)) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", rel, err)
			}
			var m metav1.PartialObjectMetadata
			if err := yaml.Unmarshal(doc, &m); err != nil {
				return fmt.Errorf("decode a document of %s: %w", rel, err)
			}
			if m.Kind == "" {
				continue // an empty document
			}
			docs = append(docs, flashDoc{file: rel, meta: m, raw: doc})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the flash's manifests: %v", err)
	}
	return docs
}

// flashDocOf is the flash's document for kind ns/name, or nil.
func flashDocOf(t testing.TB, flash, kind, ns, name string) *flashDoc {
	t.Helper()
	want := kind + " " + ns + "/" + name
	if kind == "Namespace" {
		want = kind + " /" + name
	}
	var found []flashDoc
	for _, d := range flashDocs(t, flash) {
		if d.key() == want {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil
	case 1:
		return &found[0]
	}
	t.Fatalf("%s is on the flash %d times: %v", want, len(found), found)
	return nil
}

// containerRun identifies a container instance: a restart changes it.
type containerRun struct {
	ID       string
	Started  time.Time
	Restarts int32
}

func runOf(t testing.TB, p *corev1.Pod, container string) containerRun {
	t.Helper()
	cs := containerStatus(p, container)
	if cs == nil || cs.State.Running == nil {
		t.Fatalf("pod %s: container %s not running: %+v", p.Name, container, cs)
	}
	return containerRun{ID: cs.ContainerID, Started: cs.State.Running.StartedAt.Time, Restarts: cs.RestartCount}
}

// ageRow matches a table row of `kubectl get po` for a running
// one-container pod with no restarts.
func ageRow(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+1/1\s+Running\s+0\s+\d+s$`)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sleeperPod is a pod whose container ignores SIGTERM (sleep as PID 1,
// for a duration only this test's pods use):
// its deletion takes the whole grace period, which makes the period
// visible.
func sleeperPod(name string, labels string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: ["sleep", "3607"]}
`, name, labels)
}

// TestIntegrationKubectlTutorial runs the write commands of the
// Kubernetes tutorials (Kubernetes in Action's chapters 3 and 7, the
// kubectl reference) with the stock kubectl against one devnode, in the
// order a person types them, each with what a real cluster prints; then
// powers the node off and boots a new one on the same flash: everything
// written is back.
func TestIntegrationKubectlTutorial(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	n := startNode(t)
	tmp := t.TempDir()
	kubia := filepath.Join("testdata", "kubia", "kubia-manual.yaml")
	kubiaV2 := filepath.Join("testdata", "kubia", "kubia-manual-with-labels.yaml")

	// Chapter 3: create, label, annotate.
	n.runSteps(t, []kubectlStep{
		{args: []string{"create", "-f", kubia}, stdout: "pod/kubia-manual created\n"},
		{args: []string{"create", "-f", kubiaV2}, stdout: "pod/kubia-manual-v2 created\n"},
		{args: []string{"create", "-f", kubia}, code: 1,
			stderr: `Error from server (AlreadyExists): error when creating "` + kubia + `": pods "kubia-manual" already exists` + "\n"},
	})
	manual := n.waitRunningIn(t, "default", "kubia-manual")
	n.waitRunningIn(t, "default", "kubia-manual-v2")
	before := runOf(t, manual, "kubia")
	t.Run("created pods are on the flash", func(t *testing.T) {
		for _, name := range []string{"kubia-manual", "kubia-manual-v2"} {
			if flashDocOf(t, n.flash, "Pod", "default", name) == nil {
				t.Errorf("no manifest document for pod %s under %s/pods: %v", name, n.flash, flashDocs(t, n.flash))
			}
		}
	})
	n.runSteps(t, []kubectlStep{
		{args: []string{"label", "po", "kubia-manual", "creation_method=manual"}, stdout: "pod/kubia-manual labeled\n"},
		{args: []string{"label", "po", "kubia-manual-v2", "env=debug"}, code: 1,
			stderr: "error: 'env' already has a value (prod), and --overwrite is false\n"},
		{args: []string{"label", "po", "kubia-manual-v2", "env=debug", "--overwrite"}, stdout: "pod/kubia-manual-v2 labeled\n"},
		{args: []string{"label", "po", "kubia-manual", "scratch=yes"}, stdout: "pod/kubia-manual labeled\n"},
		{args: []string{"label", "po", "kubia-manual", "scratch-"}, stdout: "pod/kubia-manual unlabeled\n"},
		{args: []string{"annotate", "pod", "kubia-manual", "mycompany.com/someannotation=foo bar"}, stdout: "pod/kubia-manual annotated\n"},
		{args: []string{"annotate", "pod", "kubia-manual", "mycompany.com/someannotation=other"}, code: 1,
			stderr: "error: --overwrite is false but found the following declared annotation(s): 'mycompany.com/someannotation' already has a value (foo bar)\n"},
	})
	t.Run("get po -l creation_method=manual", func(t *testing.T) {
		out := n.mustKc(t, "get", "po", "-l", "creation_method=manual")
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n`),
			ageRow("kubia-manual"), ageRow("kubia-manual-v2"),
		} {
			if !re.MatchString(out) {
				t.Errorf("no match for %s:\n%s", re, out)
			}
		}
		if got := strings.Count(out, "\n"); got != 3 {
			t.Errorf("%d lines, want a header and 2 pods:\n%s", got, out)
		}
		out = n.mustKc(t, "get", "po", "-L", "creation_method,env")
		if !regexp.MustCompile(`(?m)^kubia-manual-v2\s+1/1\s+Running\s+0\s+\S+\s+manual\s+debug$`).MatchString(out) {
			t.Errorf("kubectl get po -L creation_method,env:\n%s", out)
		}
	})
	t.Run("metadata on the pod and the flash", func(t *testing.T) {
		p := n.podIn(t, "default", "kubia-manual")
		if diff := cmp.Diff(map[string]string{"creation_method": "manual"}, p.Labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
		if got := p.Annotations["mycompany.com/someannotation"]; got != "foo bar" {
			t.Errorf("annotation = %q, want %q", got, "foo bar")
		}
		d := flashDocOf(t, n.flash, "Pod", "default", "kubia-manual")
		if d == nil {
			t.Fatal("kubia-manual is not on the flash")
		}
		if d.meta.Labels["creation_method"] != "manual" || d.meta.Annotations["mycompany.com/someannotation"] != "foo bar" {
			t.Errorf("the flash's document lacks the label or the annotation:\n%s", d.raw)
		}
	})
	t.Run("label and annotate keep the containers running", func(t *testing.T) {
		// Give a reconcile that would restart the container time to act.
		time.Sleep(3 * time.Second)
		p := n.podIn(t, "default", "kubia-manual")
		if diff := cmp.Diff(before, runOf(t, p, "kubia")); diff != "" {
			t.Errorf("kubia-manual's container after label and annotate (-before +after):\n%s", diff)
		}
		t.Logf("kubia-manual UID %s before, %s after the metadata edits", manual.UID, p.UID)
	})

	// exec, cp, port-forward into kubia-manual.
	t.Run("exec exit status", func(t *testing.T) {
		r := n.kc(t, "exec", "kubia-manual", "--", "sh", "-c", "exit 3")
		if r.code != 3 || r.stderr != "command terminated with exit code 3\n" {
			t.Errorf("kubectl exec kubia-manual -- sh -c 'exit 3': exit %d, stderr %q; want 3, %q", r.code, r.stderr, "command terminated with exit code 3\n")
		}
		if out := n.mustKc(t, "exec", "kubia-manual", "-c", "kubia", "--", "hostname"); out != "kubia-manual\n" {
			t.Errorf("kubectl exec kubia-manual -c kubia -- hostname = %q", out)
		}
	})
	t.Run("exec -i", func(t *testing.T) {
		r := n.kubectlIn(t, "hello from stdin\nline 2\n", nil, "exec", "-i", "kubia-manual", "--", "sh", "-c", "cat; echo done")
		if diff := cmp.Diff(kubectlRun{stdout: "hello from stdin\nline 2\ndone\n"}, r, cmp.AllowUnexported(kubectlRun{})); diff != "" {
			t.Errorf("kubectl exec -i (-want +got):\n%s", diff)
		}
	})
	t.Run("cp both ways", func(t *testing.T) {
		local := writeFile(t, tmp, "to-pod.txt", "copied into the pod\n")
		if out := n.mustKc(t, "cp", local, "kubia-manual:/tmp/to-pod.txt"); out != "" {
			t.Errorf("kubectl cp to the pod printed %q", out)
		}
		if out := n.mustKc(t, "exec", "kubia-manual", "--", "cat", "/tmp/to-pod.txt"); out != "copied into the pod\n" {
			t.Errorf("the copied file in the pod = %q", out)
		}
		back := filepath.Join(tmp, "from-pod.html")
		n.mustKc(t, "cp", "kubia-manual:/www/index.html", back)
		if b, err := os.ReadFile(back); err != nil || string(b) != "You've hit kubia-manual\n" {
			t.Errorf("the file copied from the pod = %q, %v", b, err)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		port := freePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		cmd := n.command(ctx, "kubectl", "--server", n.url, "--cache-dir", n.kube, "port-forward", "kubia-manual", fmt.Sprintf("%d:8080", port))
		var out, errOut lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		want := fmt.Sprintf("Forwarding from 127.0.0.1:%d -> 8080\n", port)
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), want); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("kubectl port-forward kubia-manual %d:8080 did not print %q: stdout %q, stderr %q", port, want, out.String(), errOut.String())
			}
		}
		for i := range 2 { // a second connection through the same forward
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				t.Fatalf("GET %d through the forward: %v\nstderr: %s", i, err, errOut.String())
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "You've hit kubia-manual\n" {
				t.Errorf("GET %d through the forward = %d %q", i, resp.StatusCode, body)
			}
		}
		if !strings.Contains(out.String(), "Handling connection for "+fmt.Sprint(port)) {
			t.Errorf("port-forward's stdout lacks %q: %q", "Handling connection for "+fmt.Sprint(port), out.String())
		}
	})

	// Chapter 3: namespaces.
	n.runSteps(t, []kubectlStep{
		{args: []string{"create", "namespace", "custom-namespace"}, stdout: "namespace/custom-namespace created\n"},
		{args: []string{"create", "-f", kubia, "-n", "custom-namespace"}, stdout: "pod/kubia-manual created\n"},
	})
	n.waitRunningIn(t, "custom-namespace", "kubia-manual")

	// Chapter 7: a ConfigMap and a Secret.
	n.runSteps(t, []kubectlStep{
		{args: []string{"create", "configmap", "fortune-config", "--from-literal=sleep-interval=25"}, stdout: "configmap/fortune-config created\n"},
		{args: []string{"create", "secret", "generic", "fortune-https", "--from-literal=password=s3cr3t-value"}, stdout: "secret/fortune-https created\n"},
	})
	t.Run("get and describe configmap and secret", func(t *testing.T) {
		if out := n.mustKc(t, "get", "cm", "fortune-config"); !regexp.MustCompile(`^NAME\s+DATA\s+AGE\nfortune-config\s+1\s+\d+s\n$`).MatchString(out) {
			t.Errorf("kubectl get cm fortune-config:\n%s", out)
		}
		if out := n.mustKc(t, "get", "cm", "fortune-config", "-o", "jsonpath={.data.sleep-interval}"); out != "25" {
			t.Errorf("configmap data = %q", out)
		}
		if out := n.mustKc(t, "describe", "cm", "fortune-config"); !regexp.MustCompile(`(?s)^Name:\s+fortune-config\nNamespace:\s+default\n.*\nData\n====\nsleep-interval:\n----\n25\n`).MatchString(out) {
			t.Errorf("kubectl describe cm fortune-config:\n%s", out)
		}
		if out := n.mustKc(t, "get", "secret", "fortune-https"); !regexp.MustCompile(`^NAME\s+TYPE\s+DATA\s+AGE\nfortune-https\s+Opaque\s+1\s+\d+s\n$`).MatchString(out) {
			t.Errorf("kubectl get secret fortune-https:\n%s", out)
		}
		if out := n.mustKc(t, "get", "secret", "fortune-https", "-o", "jsonpath={.data.password}"); out != "czNjcjN0LXZhbHVl" {
			t.Errorf("secret data = %q, want base64 of s3cr3t-value", out)
		}
		out := n.mustKc(t, "describe", "secret", "fortune-https")
		if !regexp.MustCompile(`(?s)^Name:\s+fortune-https\n.*Type:\s+Opaque\n\nData\n====\npassword:\s+12 bytes\n`).MatchString(out) || strings.Contains(out, "s3cr3t-value") {
			t.Errorf("kubectl describe secret fortune-https (the value hidden, its size shown):\n%s", out)
		}
		if ev := n.mustKc(t, "get", "events", "-A"); strings.Contains(ev, "s3cr3t-value") {
			t.Errorf("an event shows the secret's value:\n%s", ev)
		}
		if log := n.stderr.String(); strings.Contains(log, "s3cr3t-value") || strings.Contains(log, "czNjcjN0LXZhbHVl") {
			t.Errorf("the node's log shows the secret's value")
		}
	})

	// apply, client-side then server-side.
	applyPod := func(labels string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: kubia-apply
  labels: {%s}
spec:
  containers:
  - name: kubia
    image: "busybox:1.36"
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3607 & wait"]
`, labels)
	}
	applyFile := writeFile(t, tmp, "kubia-apply.yaml", applyPod("app: kubia"))
	n.runSteps(t, []kubectlStep{
		{args: []string{"apply", "-f", applyFile}, stdout: "pod/kubia-apply created\n"},
		{args: []string{"apply", "-f", applyFile}, stdout: "pod/kubia-apply unchanged\n"},
	})
	writeFile(t, tmp, "kubia-apply.yaml", applyPod("app: kubia, stage: applied"))
	n.runSteps(t, []kubectlStep{
		{args: []string{"apply", "-f", applyFile}, stdout: "pod/kubia-apply configured\n"},
	})
	applyRun := runOf(t, n.waitRunningIn(t, "default", "kubia-apply"), "kubia")

	ssaPod := func(tier string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: kubia-ssa
  labels: {tier: %s}
spec:
  containers:
  - {name: kubia, image: "busybox:1.36", command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3607 & wait"]}
`, tier)
	}
	ssaFile := writeFile(t, tmp, "kubia-ssa.yaml", ssaPod("web"))
	intruderFile := writeFile(t, tmp, "kubia-ssa-intruder.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia-ssa\n  labels: {tier: db}\n")
	n.runSteps(t, []kubectlStep{
		{args: []string{"apply", "--server-side", "-f", ssaFile}, stdout: "pod/kubia-ssa serverside-applied\n"},
		{args: []string{"apply", "--server-side", "-f", ssaFile}, stdout: "pod/kubia-ssa serverside-applied\n"},
	})
	t.Run("apply --server-side conflict", func(t *testing.T) {
		r := n.kc(t, "apply", "--server-side", "--field-manager=intruder", "-f", intruderFile)
		const want = "error: Apply failed with 1 conflict: conflict with \"kubectl\": .metadata.labels.tier\n"
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("a second manager's apply of an owned field: exit %d, stderr %q; want 1 and a stderr starting %q", r.code, r.stderr, want)
		}
		p := n.podIn(t, "default", "kubia-ssa")
		if p.Labels["tier"] != "web" {
			t.Errorf("tier = %q after a refused apply, want web", p.Labels["tier"])
		}
		var managers []string
		for _, m := range p.ManagedFields {
			managers = append(managers, m.Manager+"/"+string(m.Operation))
		}
		if !slices.Contains(managers, "kubectl/Apply") {
			t.Errorf("managedFields %v lack kubectl/Apply", managers)
		}
	})
	n.runSteps(t, []kubectlStep{
		{args: []string{"apply", "--server-side", "--field-manager=intruder", "--force-conflicts", "-f", intruderFile}, stdout: "pod/kubia-ssa serverside-applied\n"},
	})
	if got := n.podIn(t, "default", "kubia-ssa").Labels["tier"]; got != "db" {
		t.Errorf("tier after --force-conflicts = %q, want db", got)
	}

	// patch (the three kinds) and edit.
	n.runSteps(t, []kubectlStep{
		{args: []string{"patch", "pod", "kubia-apply", "-p", `{"metadata":{"labels":{"patched":"strategic"}}}`}, stdout: "pod/kubia-apply patched\n"},
		{args: []string{"patch", "pod", "kubia-apply", "-p", `{"metadata":{"labels":{"patched":"strategic"}}}`}, stdout: "pod/kubia-apply patched (no change)\n"},
		{args: []string{"patch", "pod", "kubia-apply", "--type", "merge", "-p", `{"metadata":{"annotations":{"patched":"merge"}}}`}, stdout: "pod/kubia-apply patched\n"},
		{args: []string{"patch", "pod", "kubia-apply", "--type", "json", "-p", `[{"op":"add","path":"/metadata/labels/json","value":"patched"}]`}, stdout: "pod/kubia-apply patched\n"},
	})
	t.Run("patch of an immutable field is refused", func(t *testing.T) {
		r := n.kc(t, "patch", "pod", "kubia-apply", "--type", "json", "-p", `[{"op":"replace","path":"/spec/containers/0/name","value":"renamed"}]`)
		const want = `The Pod "kubia-apply" is invalid: spec: Forbidden: pod updates may not change fields other than`
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("exit %d, stderr %q; want 1 and a stderr starting %q", r.code, r.stderr, want)
		}
	})
	editor := writeFile(t, tmp, "editor.sh", "#!/bin/sh\nsed -i 's/patched: strategic/patched: edited/' \"$1\"\n")
	if err := os.Chmod(editor, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("edit", func(t *testing.T) {
		r := n.kubectlIn(t, "", []string{"KUBE_EDITOR=" + editor}, "edit", "pod", "kubia-apply")
		if diff := cmp.Diff(kubectlRun{stdout: "pod/kubia-apply edited\n"}, r, cmp.AllowUnexported(kubectlRun{})); diff != "" {
			t.Errorf("kubectl edit pod kubia-apply (-want +got):\n%s", diff)
		}
		r = n.kubectlIn(t, "", []string{"KUBE_EDITOR=true"}, "edit", "pod", "kubia-apply")
		if diff := cmp.Diff(kubectlRun{stderr: "Edit cancelled, no changes made.\n"}, r, cmp.AllowUnexported(kubectlRun{})); diff != "" {
			t.Errorf("kubectl edit with no change (-want +got):\n%s", diff)
		}
	})
	t.Run("metadata writes keep kubia-apply's container", func(t *testing.T) {
		p := n.podIn(t, "default", "kubia-apply")
		want := map[string]string{"app": "kubia", "stage": "applied", "patched": "edited", "json": "patched"}
		if diff := cmp.Diff(want, p.Labels); diff != "" {
			t.Errorf("labels after apply, patch and edit (-want +got):\n%s", diff)
		}
		if p.Annotations["patched"] != "merge" {
			t.Errorf("annotations %v lack patched=merge", p.Annotations)
		}
		if diff := cmp.Diff(applyRun, runOf(t, p, "kubia")); diff != "" {
			t.Errorf("kubia-apply's container after metadata writes (-before +after):\n%s", diff)
		}
	})
	t.Run("patch of the image restarts the container with it", func(t *testing.T) {
		n.mustKc(t, "patch", "pod", "kubia-apply", "--type", "json", "-p", `[{"op":"replace","path":"/spec/containers/0/image","value":"busybox:1.37"}]`)
		n.waitPodIn(t, "default", "kubia-apply", time.Minute, "running busybox:1.37 after one restart", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "kubia")
			return running(p) && cs.RestartCount == 1 && strings.HasSuffix(cs.Image, "busybox:1.37")
		})
	})

	// replace, and the conflicts that keep two writers from losing a change.
	current := func(t *testing.T, name string) *corev1.Pod {
		p := n.podIn(t, "default", name)
		p.Status = corev1.PodStatus{}
		p.ManagedFields = nil
		return p
	}
	writePod := func(t *testing.T, name string, p *corev1.Pod) string {
		b, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, tmp, name, string(b))
	}
	t.Run("replace, then replace with a stale resourceVersion", func(t *testing.T) {
		p := current(t, "kubia-apply")
		p.Labels["replaced"] = "yes"
		f := writePod(t, "replace.yaml", p)
		if diff := cmp.Diff(kubectlRun{stdout: "pod/kubia-apply replaced\n"}, n.kc(t, "replace", "-f", f), cmp.AllowUnexported(kubectlRun{})); diff != "" {
			t.Fatalf("kubectl replace (-want +got):\n%s", diff)
		}
		p.Labels["replaced"] = "twice"
		f = writePod(t, "stale.yaml", p)
		want := kubectlRun{code: 1, stderr: `Error from server (Conflict): error when replacing "` + f +
			`": Operation cannot be fulfilled on pods "kubia-apply": the object has been modified; please apply your changes to the latest version and try again` + "\n"}
		if diff := cmp.Diff(want, n.kc(t, "replace", "-f", f), cmp.AllowUnexported(kubectlRun{})); diff != "" {
			t.Errorf("kubectl replace with a stale resourceVersion (-want +got):\n%s", diff)
		}
		if got := n.podIn(t, "default", "kubia-apply").Labels["replaced"]; got != "yes" {
			t.Errorf("label replaced = %q after the refused replace, want yes", got)
		}
	})
	userFile := func(labels string) string {
		return `# A user's file: a ConfigMap and a pod.
apiVersion: v1
kind: ConfigMap
metadata: {name: kubia-file-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata:
  name: kubia-file
  labels: {` + labels + `}
spec:
  containers:
  - {name: kubia, image: "busybox:1.36", command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3607 & wait"]}
`
	}
	n.writeManifest("kubia-file.yaml", userFile("app: kubia"))
	fileRun := runOf(t, n.waitRunningIn(t, "default", "kubia-file"), "kubia")
	t.Run("a write to an object of a user's file rewrites its document and keeps the others", func(t *testing.T) {
		n.runSteps(t, []kubectlStep{{args: []string{"label", "po", "kubia-file", "creation_method=manual"}, stdout: "pod/kubia-file labeled\n"}})
		var docs []string
		for _, d := range flashDocs(t, n.flash) {
			if d.file == "kubia-file.yaml" {
				docs = append(docs, d.key())
			}
		}
		if diff := cmp.Diff([]string{"ConfigMap default/kubia-file-config", "Pod default/kubia-file"}, docs); diff != "" {
			t.Errorf("the documents of kubia-file.yaml (-want +got):\n%s", diff)
		}
		if d := flashDocOf(t, n.flash, "Pod", "default", "kubia-file"); d == nil || d.file != "kubia-file.yaml" || d.meta.Labels["creation_method"] != "manual" {
			t.Errorf("the pod's document after kubectl label: %+v", d)
		}
		if out := n.mustKc(t, "get", "cm", "kubia-file-config", "-o", "jsonpath={.data.greeting}"); out != "hello" {
			t.Errorf("the file's ConfigMap = %q", out)
		}
		time.Sleep(2 * time.Second)
		if diff := cmp.Diff(fileRun, runOf(t, n.podIn(t, "default", "kubia-file"), "kubia")); diff != "" {
			t.Errorf("kubia-file's container after kubectl label (-before +after):\n%s", diff)
		}
	})
	t.Run("a replace based on a version older than the file on the flash is a conflict", func(t *testing.T) {
		stale := current(t, "kubia-file")
		// A person edits the file on the flash (say, the card in a
		// reader) while a kubectl user holds the old version.
		n.writeManifest("kubia-file.yaml", userFile("app: kubia, creation_method: manual, edited: on-flash"))
		n.waitPodIn(t, "default", "kubia-file", 30*time.Second, "the flash's label edited=on-flash", func(p *corev1.Pod) bool {
			return p.Labels["edited"] == "on-flash"
		})
		stale.Labels["edited"] = "by-kubectl"
		f := writePod(t, "stale-file.yaml", stale)
		want := kubectlRun{code: 1, stderr: `Error from server (Conflict): error when replacing "` + f +
			`": Operation cannot be fulfilled on pods "kubia-file": the object has been modified; please apply your changes to the latest version and try again` + "\n"}
		if diff := cmp.Diff(want, n.kc(t, "replace", "-f", f), cmp.AllowUnexported(kubectlRun{})); diff != "" {
			t.Errorf("kubectl replace over the flash's edit (-want +got):\n%s", diff)
		}
		if got := n.podIn(t, "default", "kubia-file").Labels["edited"]; got != "on-flash" {
			t.Errorf("edited = %q: the flash's edit was lost", got)
		}
	})

	// Validation as an API server does it.
	noImage := writeFile(t, tmp, "kubia-noimage.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: kubia-noimage}\nspec:\n  containers:\n  - {name: kubia}\n")
	typo := writeFile(t, tmp, "kubia-typo.yaml", `apiVersion: v1
kind: Pod
metadata: {name: kubia-typo}
spec:
  containers:
  - name: kubia
    image: "busybox:1.36"
    imagePullPolcy: Never
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3607 & wait"]
`)
	unknownField := `Error from server (BadRequest): error when creating "` + typo + `": Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagePullPolcy"` + "\n"
	n.runSteps(t, []kubectlStep{
		{args: []string{"create", "-f", noImage}, code: 1, stderr: `The Pod "kubia-noimage" is invalid: spec.containers[0].image: Required value` + "\n"},
		{args: []string{"create", "-f", typo, "--validate=strict"}, code: 1, stderr: unknownField},
		{args: []string{"create", "-f", typo}, code: 1, stderr: unknownField},
		{args: []string{"get", "po", "kubia-noimage", "kubia-typo"}, code: 1,
			stderr: "Error from server (NotFound): pods \"kubia-noimage\" not found\nError from server (NotFound): pods \"kubia-typo\" not found\n"},
		// --validate=false: the server drops the unknown field (fieldValidation=Ignore).
		{args: []string{"create", "-f", typo, "--validate=false"}, stdout: "pod/kubia-typo created\n"},
	})
	t.Run("refused objects are not on the flash", func(t *testing.T) {
		if d := flashDocOf(t, n.flash, "Pod", "default", "kubia-noimage"); d != nil {
			t.Errorf("the invalid pod is on the flash in %s", d.file)
		}
		if d := flashDocOf(t, n.flash, "Pod", "default", "kubia-typo"); d == nil || bytes.Contains(d.raw, []byte("imagePullPolcy")) {
			t.Errorf("kubia-typo on the flash: want it without the dropped field: %+v", d)
		}
	})

	// Power off (SIGTERM) and boot a new node on the same flash: every
	// write is back.
	n.waitRunningIn(t, "default", "kubia-typo")
	n.stop()
	n2 := startNode(t, func(flash string) {
		if out, err := exec.Command("cp", "-a", n.flash+"/.", flash).CombinedOutput(); err != nil {
			t.Fatalf("copy the flash: %v\n%s", err, out)
		}
	})
	n = nil // the old node is off; every step below uses n2
	t.Run("after the power cycle", func(t *testing.T) {
		for _, ns := range [][2]string{{"default", "kubia-manual"}, {"default", "kubia-manual-v2"}, {"default", "kubia-apply"}, {"default", "kubia-ssa"},
			{"default", "kubia-file"}, {"default", "kubia-typo"}, {"custom-namespace", "kubia-manual"}} {
			n2.waitRunningIn(t, ns[0], ns[1])
		}
		p := n2.podIn(t, "default", "kubia-manual")
		if diff := cmp.Diff(map[string]string{"creation_method": "manual"}, p.Labels); diff != "" {
			t.Errorf("kubia-manual's labels (-want +got):\n%s", diff)
		}
		if got := p.Annotations["mycompany.com/someannotation"]; got != "foo bar" {
			t.Errorf("kubia-manual's annotation = %q", got)
		}
		if diff := cmp.Diff(map[string]string{"creation_method": "manual", "env": "debug"}, n2.podIn(t, "default", "kubia-manual-v2").Labels); diff != "" {
			t.Errorf("kubia-manual-v2's labels (-want +got):\n%s", diff)
		}
		pa := n2.podIn(t, "default", "kubia-apply")
		if diff := cmp.Diff(map[string]string{"app": "kubia", "stage": "applied", "patched": "edited", "json": "patched", "replaced": "yes"}, pa.Labels); diff != "" {
			t.Errorf("kubia-apply's labels (-want +got):\n%s", diff)
		}
		if pa.Annotations["patched"] != "merge" || pa.Spec.Containers[0].Image != "busybox:1.37" {
			t.Errorf("kubia-apply: annotations %v, image %s", pa.Annotations, pa.Spec.Containers[0].Image)
		}
		if diff := cmp.Diff(map[string]string{"app": "kubia", "creation_method": "manual", "edited": "on-flash"}, n2.podIn(t, "default", "kubia-file").Labels); diff != "" {
			t.Errorf("kubia-file's labels (-want +got):\n%s", diff)
		}
		if out := n2.mustKc(t, "get", "cm", "fortune-config", "-o", "jsonpath={.data.sleep-interval}"); out != "25" {
			t.Errorf("fortune-config = %q", out)
		}
		if out := n2.mustKc(t, "get", "secret", "fortune-https", "-o", "jsonpath={.data.password}"); out != "czNjcjN0LXZhbHVl" {
			t.Errorf("fortune-https = %q", out)
		}
		// Server-side apply's ownership survives: the intruder still
		// conflicts with kubectl over the field it did not force.
		ssa := writeFile(t, tmp, "kubia-ssa-after.yaml", ssaPod("cache"))
		r := n2.kc(t, "apply", "--server-side", "-f", ssa)
		const want = "error: Apply failed with 1 conflict: conflict with \"intruder\": .metadata.labels.tier\n"
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("kubectl's apply over the intruder's field after the power cycle: exit %d, stderr %q; want 1, %q...", r.code, r.stderr, want)
		}
	})

	// Deletions: by label, by file, with grace periods, all, a namespace.
	n2.runSteps(t, []kubectlStep{
		{args: []string{"delete", "po", "-l", "creation_method=manual"},
			stdout: "pod \"kubia-file\" deleted\npod \"kubia-manual\" deleted\npod \"kubia-manual-v2\" deleted\n"},
		{args: []string{"get", "po", "-l", "creation_method=manual"}, stderr: "No resources found in default namespace.\n"},
		{args: []string{"delete", "-f", applyFile}, stdout: "pod \"kubia-apply\" deleted\n"},
	})
	t.Run("deleting a pod of a user's file keeps the file's other documents", func(t *testing.T) {
		if d := flashDocOf(t, n2.flash, "Pod", "default", "kubia-file"); d != nil {
			t.Errorf("kubia-file is still on the flash in %s", d.file)
		}
		if d := flashDocOf(t, n2.flash, "ConfigMap", "default", "kubia-file-config"); d == nil {
			t.Errorf("kubia-file-config is gone from the flash with its file's pod")
		}
	})
	grace := writeFile(t, tmp, "grace.yaml", sleeperPod("kubia-grace", "app: grace")+"---\n"+sleeperPod("kubia-now", "app: now")+"---\n"+sleeperPod("kubia-force", "app: force"))
	n2.mustKc(t, "create", "-f", grace)
	for _, name := range []string{"kubia-grace", "kubia-now", "kubia-force"} {
		n2.waitRunningIn(t, "default", name)
	}
	t.Run("delete --grace-period=4 waits the period out", func(t *testing.T) {
		start := time.Now()
		n2.runSteps(t, []kubectlStep{{args: []string{"delete", "po", "kubia-grace", "--grace-period=4"}, stdout: "pod \"kubia-grace\" deleted\n"}})
		// sleep ignores SIGTERM: the container is killed when the period ends.
		if took := time.Since(start); took < 3500*time.Millisecond || took > 25*time.Second {
			t.Errorf("kubectl delete --grace-period=4 of a pod ignoring SIGTERM returned after %v", took)
		}
	})
	t.Run("delete --now", func(t *testing.T) {
		start := time.Now()
		n2.runSteps(t, []kubectlStep{{args: []string{"delete", "po", "kubia-now", "--now"}, stdout: "pod \"kubia-now\" deleted\n"}})
		// --now is a grace period of 1 s, not the pod's 30 s.
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("kubectl delete --now returned after %v", took)
		}
	})
	n2.runSteps(t, []kubectlStep{
		{args: []string{"delete", "po", "kubia-force", "--force"}, stdout: "pod \"kubia-force\" force deleted\n",
			stderr: "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.\n"},
		{args: []string{"get", "po", "kubia-grace", "kubia-now", "kubia-force"}, code: 1,
			stderr: "Error from server (NotFound): pods \"kubia-grace\" not found\nError from server (NotFound): pods \"kubia-now\" not found\nError from server (NotFound): pods \"kubia-force\" not found\n"},
		{args: []string{"delete", "po", "--all"}, stdout: "pod \"kubia-ssa\" deleted\npod \"kubia-typo\" deleted\n"},
		{args: []string{"get", "po"}, stderr: "No resources found in default namespace.\n"},
		{args: []string{"delete", "ns", "custom-namespace"}, stdout: "namespace \"custom-namespace\" deleted\n"},
		{args: []string{"get", "po", "-n", "custom-namespace"}, stderr: "No resources found in custom-namespace namespace.\n"},
		{args: []string{"get", "ns", "custom-namespace"}, code: 1, stderr: "Error from server (NotFound): namespaces \"custom-namespace\" not found\n"},
	})
	t.Run("the deleted pods' containers are gone", func(t *testing.T) {
		deadline := time.Now().Add(45 * time.Second)
		for {
			// Only this test's pods run "sleep 3607" and "-h /www".
			left := procsOf("sleep", "3607")
			if left = append(left, procsOf("httpd", "-p", "8080", "-h", "/www")...); len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("processes of deleted pods still run: %v", left)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	// A second power cycle: nothing deleted comes back.
	n2.stop()
	n3 := startNode(t, func(flash string) {
		if out, err := exec.Command("cp", "-a", n2.flash+"/.", flash).CombinedOutput(); err != nil {
			t.Fatalf("copy the flash: %v\n%s", err, out)
		}
	})
	t.Run("deletions survive the power cycle", func(t *testing.T) {
		if r := n3.kc(t, "get", "po", "-A", "-o", "name"); r.code != 0 || r.stdout != "" {
			t.Errorf("pods after the second power cycle: %+v", r)
		}
		if r := n3.kc(t, "get", "ns", "custom-namespace"); r.code != 1 {
			t.Errorf("custom-namespace after the second power cycle: %+v", r)
		}
		if out := n3.mustKc(t, "get", "cm", "-o", "name"); !strings.Contains(out, "configmap/fortune-config\n") || !strings.Contains(out, "configmap/kubia-file-config\n") {
			t.Errorf("configmaps after the second power cycle:\n%s", out)
		}
	})
}
