package api

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/store"
)

// kubectlStep is one kubectl command of a scenario, with what it must
// print and how it must exit.
type kubectlStep struct {
	args []string
	env  []string // added to kubectl's environment
	// stdout is kubectl's whole standard output.
	stdout string
	// stderr, when set, must be contained in kubectl's standard error, and
	// kubectl must then fail with exit status 1.
	stderr string
	// check inspects the store after the step.
	check func(t *testing.T, st *store.Store)
}

// runSteps runs a scenario's steps in order against one server.
func runSteps(t *testing.T, k *kubectl, st *store.Store, steps []kubectlStep) {
	t.Helper()
	for i, step := range steps {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		var stdout, stderr bytes.Buffer
		cmd := k.command(ctx, step.args...)
		cmd.Env = append(cmd.Env, step.env...)
		cmd.Dir = k.dir
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		switch {
		case step.stderr != "":
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), step.stderr) {
				t.Fatalf("step %d: kubectl %v: err %v, stderr %q; want exit status 1 with %q", i, step.args, err, stderr.String(), step.stderr)
			}
		case err != nil:
			t.Fatalf("step %d: kubectl %v: %v\nstdout:\n%s\nstderr:\n%s", i, step.args, err, stdout.String(), stderr.String())
		}
		if diff := cmp.Diff(step.stdout, stdout.String()); diff != "" {
			t.Fatalf("step %d: kubectl %v: stdout (-want +got):\n%s\nstderr:\n%s", i, step.args, diff, stderr.String())
		}
		if step.check != nil {
			step.check(t, st)
		}
	}
}

// writeFiles writes the scenario's manifests into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const kubiaManual = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-manual
spec:
  containers:
  - image: luksa/kubia
    name: kubia
    ports:
    - containerPort: 8080
      protocol: TCP
`

const kubiaApply = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-apply
  labels:
    app: kubia
spec:
  containers:
  - image: luksa/kubia
    name: kubia
`

const kubiaApplyRelabelled = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-apply
  labels:
    app: kubia
    env: prod
spec:
  containers:
  - image: luksa/kubia
    name: kubia
`

// unknownField has a field the Pod type does not have.
const unknownField = `apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  foo: 1
  containers:
  - name: app
    image: busybox
`

const settingsConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  level: debug
`

const settingsConfigMapReplaced = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  level: info
`

func podLabels(ns, name string, want map[string]string) func(t *testing.T, st *store.Store) {
	return func(t *testing.T, st *store.Store) {
		t.Helper()
		obj, ok := st.Get(store.KindPod, ns, name)
		if !ok {
			t.Fatalf("pod %s/%s is not in the store", ns, name)
		}
		if diff := cmp.Diff(want, obj.(*corev1.Pod).Labels); diff != "" {
			t.Errorf("pod %s/%s labels (-want +got):\n%s", ns, name, diff)
		}
	}
}

func gone(kind, ns, name string) func(t *testing.T, st *store.Store) {
	return func(t *testing.T, st *store.Store) {
		t.Helper()
		if _, ok := st.Get(kind, ns, name); ok {
			t.Errorf("%s %s/%s is still in the store", kind, ns, name)
		}
	}
}

// TestKubectlWrites runs the tutorial's writes with the real kubectl
// against a fake flash, checking kubectl's output and exit status and the
// store after each.
func TestKubectlWrites(t *testing.T) {
	srv, st, _ := newWriteServer(t)
	k := newKubectl(t, srv.URL)
	writeFiles(t, k.dir, map[string]string{
		"kubia-manual.yaml": kubiaManual, "kubia-apply.yaml": kubiaApply, "kubia-apply-2.yaml": kubiaApplyRelabelled,
		"settings.yaml": settingsConfigMap, "settings-2.yaml": settingsConfigMapReplaced, "bad.yaml": unknownField,
		"settings-stale.yaml": strings.Replace(settingsConfigMap, "name: settings", "name: settings\n  resourceVersion: \"1\"", 1),
		"ssa.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  labels:\n    env: prod\ndata:\n  a: b\n",
	})
	runSteps(t, k, st, []kubectlStep{
		{args: []string{"create", "-f", "kubia-manual.yaml"}, stdout: "pod/kubia-manual created\n",
			check: podLabels("default", "kubia-manual", nil)},
		{args: []string{"create", "-f", "kubia-manual.yaml"},
			stderr: `Error from server (AlreadyExists): error when creating "kubia-manual.yaml": pods "kubia-manual" already exists`},
		// kubectl's default --validate=strict sends fieldValidation=Strict
		// (the OpenAPI v3 document lists it); --validate=warn sends Warn.
		{args: []string{"create", "-f", "bad.yaml"},
			stderr: `Error from server (BadRequest): error when creating "bad.yaml": Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo"`,
			check:  gone(store.KindPod, "default", "bad")},
		{args: []string{"create", "-f", "bad.yaml", "--validate=warn"}, stdout: "pod/bad created\n"},
		{args: []string{"delete", "-f", "bad.yaml"}, stdout: "pod \"bad\" deleted\n"},
		{args: []string{"label", "po", "kubia-manual", "creation_method=manual"}, stdout: "pod/kubia-manual labeled\n",
			check: podLabels("default", "kubia-manual", map[string]string{"creation_method": "manual"})},
		{args: []string{"label", "po", "kubia-manual", "creation_method=other"},
			stderr: "error: 'creation_method' already has a value (manual), and --overwrite is false"},
		{args: []string{"label", "po", "kubia-manual", "creation_method=other", "--overwrite"}, stdout: "pod/kubia-manual labeled\n",
			check: podLabels("default", "kubia-manual", map[string]string{"creation_method": "other"})},
		{args: []string{"label", "po", "kubia-manual", "creation_method-"}, stdout: "pod/kubia-manual unlabeled\n",
			check: podLabels("default", "kubia-manual", nil)},
		{args: []string{"annotate", "pod", "kubia-manual", "mycompany.com/someannotation=foo bar"}, stdout: "pod/kubia-manual annotated\n",
			check: func(t *testing.T, st *store.Store) {
				obj, _ := st.Get(store.KindPod, "default", "kubia-manual")
				if got := obj.(*corev1.Pod).Annotations["mycompany.com/someannotation"]; got != "foo bar" {
					t.Errorf("annotation = %q, want foo bar", got)
				}
			}},
		{args: []string{"get", "po", "kubia-manual", "-o", "jsonpath={.metadata.annotations.mycompany\\.com/someannotation}"}, stdout: "foo bar"},

		{args: []string{"apply", "-f", "kubia-apply.yaml"}, stdout: "pod/kubia-apply created\n",
			check: podLabels("default", "kubia-apply", map[string]string{"app": "kubia"})},
		{args: []string{"apply", "-f", "kubia-apply-2.yaml"}, stdout: "pod/kubia-apply configured\n",
			check: podLabels("default", "kubia-apply", map[string]string{"app": "kubia", "env": "prod"})},
		{args: []string{"apply", "-f", "kubia-apply-2.yaml"}, stdout: "pod/kubia-apply unchanged\n"},
		{args: []string{"apply", "-f", "kubia-apply.yaml"}, stdout: "pod/kubia-apply configured\n",
			check: podLabels("default", "kubia-apply", map[string]string{"app": "kubia"})},

		{args: []string{"apply", "--server-side", "-f", "ssa.yaml"}, stdout: "configmap/ssa serverside-applied\n"},
		{args: []string{"label", "cm", "ssa", "env=dev", "--overwrite"}, stdout: "configmap/ssa labeled\n"},
		{args: []string{"apply", "--server-side", "-f", "ssa.yaml"},
			stderr: "error: Apply failed with 1 conflict: conflict with \"kubectl-label\" using v1: .metadata.labels.env\n"},
		{args: []string{"apply", "--server-side", "--force-conflicts", "-f", "ssa.yaml"}, stdout: "configmap/ssa serverside-applied\n",
			check: func(t *testing.T, st *store.Store) {
				obj, _ := st.Get(store.KindConfigMap, "default", "ssa")
				if got := obj.(*corev1.ConfigMap).Labels["env"]; got != "prod" {
					t.Errorf("ssa env label = %q, want prod", got)
				}
			}},
		{args: []string{"create", "-f", "settings.yaml"}, stdout: "configmap/settings created\n"},
		{args: []string{"replace", "-f", "settings-2.yaml"}, stdout: "configmap/settings replaced\n",
			check: func(t *testing.T, st *store.Store) {
				obj, _ := st.Get(store.KindConfigMap, "default", "settings")
				if got := obj.(*corev1.ConfigMap).Data["level"]; got != "info" {
					t.Errorf("settings level = %q, want info", got)
				}
			}},
		{args: []string{"replace", "-f", "settings-stale.yaml"},
			stderr: `Error from server (Conflict): error when replacing "settings-stale.yaml": Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again`},
		{args: []string{"patch", "pod", "web", "-p", `{"spec":{"restartPolicy":"Never"}}`},
			stderr: "The Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"},
		{args: []string{"set", "image", "pod/web", "app=busybox:1.37"}, stdout: "pod/web image updated\n"},
		{args: []string{"edit", "configmap", "settings"}, env: []string{"KUBE_EDITOR=sed -i s/level:\\ info/level:\\ warn/"},
			stdout: "configmap/settings edited\n",
			check: func(t *testing.T, st *store.Store) {
				obj, _ := st.Get(store.KindConfigMap, "default", "settings")
				if got := obj.(*corev1.ConfigMap).Data["level"]; got != "warn" {
					t.Errorf("settings level = %q, want warn", got)
				}
			}},

		{args: []string{"delete", "po", "kubia-manual"}, stdout: "pod \"kubia-manual\" deleted\n",
			check: gone(store.KindPod, "default", "kubia-manual")},
		{args: []string{"delete", "-f", "kubia-apply.yaml"}, stdout: "pod \"kubia-apply\" deleted\n",
			check: gone(store.KindPod, "default", "kubia-apply")},
		{args: []string{"delete", "po", "-l", "app=web"}, stdout: "pod \"web\" deleted\n",
			check: gone(store.KindPod, "default", "web")},
		{args: []string{"delete", "po", "--all"}, stdout: "pod \"done\" deleted\n",
			check: gone(store.KindPod, "default", "done")},
		{args: []string{"delete", "po", "nope"}, stderr: `Error from server (NotFound): pods "nope" not found`},

		{args: []string{"create", "namespace", "custom-namespace"}, stdout: "namespace/custom-namespace created\n"},
		{args: []string{"create", "configmap", "fortune-config", "--from-literal=sleep-interval=25", "-n", "custom-namespace"},
			stdout: "configmap/fortune-config created\n"},
		{args: []string{"create", "secret", "generic", "fortune-https", "--from-literal=foo=bar", "-n", "custom-namespace"},
			stdout: "secret/fortune-https created\n",
			check: func(t *testing.T, st *store.Store) {
				obj, ok := st.Get(store.KindSecret, "custom-namespace", "fortune-https")
				if !ok || string(obj.(*corev1.Secret).Data["foo"]) != "bar" {
					t.Errorf("secret fortune-https = %v, %v; want foo=bar", obj, ok)
				}
			}},
		{args: []string{"create", "-f", "kubia-manual.yaml", "-n", "custom-namespace"}, stdout: "pod/kubia-manual created\n",
			check: podLabels("custom-namespace", "kubia-manual", nil)},
		{args: []string{"create", "-f", "kubia-manual.yaml", "-n", "missing"},
			stderr: `Error from server (NotFound): error when creating "kubia-manual.yaml": namespaces "missing" not found`},
		{args: []string{"delete", "ns", "custom-namespace"}, stdout: "namespace \"custom-namespace\" deleted\n",
			check: func(t *testing.T, st *store.Store) {
				gone(store.KindNamespace, "", "custom-namespace")(t, st)
				gone(store.KindPod, "custom-namespace", "kubia-manual")(t, st)
				gone(store.KindConfigMap, "custom-namespace", "fortune-config")(t, st)
				gone(store.KindSecret, "custom-namespace", "fortune-https")(t, st)
			}},
		{args: []string{"delete", "ns", "default"},
			stderr: `Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted`},
	})
}

// TestKubectlDeleteGrace checks the grace period kubectl's delete flags
// reach the flash with.
func TestKubectlDeleteGrace(t *testing.T) {
	srv, st, flash := newWriteServer(t)
	k := newKubectl(t, srv.URL)
	save := func(name string) func(t *testing.T, st *store.Store) {
		return func(t *testing.T, st *store.Store) {
			t.Helper()
			if _, err := flash.Save(t.Context(), testPod(name), WriteInfo{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	runSteps(t, k, st, []kubectlStep{
		{args: []string{"delete", "po", "web", "--grace-period=5"}, stdout: "pod \"web\" deleted\n", check: save("web")},
		{args: []string{"delete", "po", "web", "--now"}, stdout: "pod \"web\" deleted\n", check: save("web")},
		{args: []string{"delete", "po", "web", "--grace-period=0", "--force"}, stdout: "pod \"web\" force deleted\n", check: save("web")},
		{args: []string{"delete", "po", "web"}, stdout: "pod \"web\" deleted\n"},
	})
	want := []string{"Pod default/web 5", "Pod default/web 1", "Pod default/web 0", "Pod default/web nil"}
	if diff := cmp.Diff(want, flash.removed()); diff != "" {
		t.Errorf("the flash's removes (-want +got):\n%s", diff)
	}
}
