package api

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/store"
)

// The manifests of the server-side apply scenario: kubia as applied by
// kubectl, by another manager with a changed label, and with one label
// fewer.
const (
	ssaKubia = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-ssa
  labels:
    app: kubia
    tier: front
spec:
  containers:
  - image: luksa/kubia
    name: kubia
`
	ssaKubiaOther = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-ssa
  labels:
    app: other
`
	ssaKubiaNoTier = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-ssa
  labels:
    app: kubia
spec:
  containers:
  - image: luksa/kubia
    name: kubia
`
	csaKubia = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-csa
  labels:
    app: kubia
spec:
  containers:
  - image: luksa/kubia
    name: kubia
`
	csaKubiaOther = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-csa
  labels:
    app: other
`
	csaKubiaV2 = `apiVersion: v1
kind: Pod
metadata:
  name: kubia-csa
  labels:
    app: kubia-v2
spec:
  containers:
  - image: luksa/kubia
    name: kubia
`
)

// managers checks the pod's managedFields: each entry's manager and
// operation, in order.
func managers(ns, name string, want ...string) func(t *testing.T, st *store.Store) {
	return func(t *testing.T, st *store.Store) {
		t.Helper()
		obj, ok := st.Get(store.KindPod, ns, name)
		if !ok {
			t.Fatalf("pod %s/%s is not in the store", ns, name)
		}
		var got []string
		for _, e := range obj.(*corev1.Pod).ManagedFields {
			got = append(got, e.Manager+" "+string(e.Operation))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pod %s/%s managedFields (-want +got):\n%s", ns, name, diff)
		}
	}
}

// both runs checks in order.
func both(checks ...func(t *testing.T, st *store.Store)) func(t *testing.T, st *store.Store) {
	return func(t *testing.T, st *store.Store) {
		t.Helper()
		for _, c := range checks {
			c(t, st)
		}
	}
}

// TestKubectlServerSideApply runs kubectl apply --server-side with the
// real kubectl: create, a conflicting apply by another manager (kubectl
// exits 1 with the API server's conflict), --force-conflicts, an apply
// that drops a field it owns, and a conflict with a client-side apply.
func TestKubectlServerSideApply(t *testing.T) {
	srv, st, _ := newWriteServer(t)
	k := newKubectl(t, srv.URL)
	writeFiles(t, k.dir, map[string]string{
		"kubia-ssa.yaml": ssaKubia, "kubia-ssa-other.yaml": ssaKubiaOther, "kubia-ssa-notier.yaml": ssaKubiaNoTier,
		"kubia-csa.yaml": csaKubia, "kubia-csa-other.yaml": csaKubiaOther, "kubia-csa-v2.yaml": csaKubiaV2,
	})
	const conflictHint = "Please review the fields above--they currently have other managers."
	runSteps(t, k, st, []kubectlStep{
		{args: []string{"apply", "--server-side", "-f", "kubia-ssa.yaml"}, stdout: "pod/kubia-ssa serverside-applied\n",
			check: both(podLabels("default", "kubia-ssa", map[string]string{"app": "kubia", "tier": "front"}),
				managers("default", "kubia-ssa", "kubectl Apply"))},
		// The API serves managedFields (jsonpath shows them); kubectl's
		// get -o yaml hides them unless asked.
		{args: []string{"get", "po", "kubia-ssa", "-o", "jsonpath={.metadata.managedFields[*].manager} {.metadata.managedFields[*].operation} {.metadata.managedFields[*].apiVersion} {.metadata.managedFields[*].fieldsType}"},
			stdout: "kubectl Apply v1 FieldsV1",
			check: func(t *testing.T, st *store.Store) {
				if out := k.ok("get", "po", "kubia-ssa", "-o", "yaml"); strings.Contains(out, "managedFields") {
					t.Errorf("kubectl get -o yaml shows managedFields:\n%s", out)
				}
				out := k.ok("get", "po", "kubia-ssa", "-o", "yaml", "--show-managed-fields")
				for _, want := range []string{"  managedFields:\n  - apiVersion: v1\n    fieldsType: FieldsV1\n", "    manager: kubectl\n    operation: Apply\n    time: "} {
					if !strings.Contains(out, want) {
						t.Errorf("kubectl get -o yaml --show-managed-fields lacks %q:\n%s", want, out)
					}
				}
			}},
		{args: []string{"apply", "--server-side", "-f", "kubia-ssa.yaml"}, stdout: "pod/kubia-ssa serverside-applied\n"},

		{args: []string{"apply", "--server-side", "--field-manager=other", "-f", "kubia-ssa-other.yaml"},
			stderr: "error: Apply failed with 1 conflict: conflict with \"kubectl\": .metadata.labels.app\n" + conflictHint,
			check:  podLabels("default", "kubia-ssa", map[string]string{"app": "kubia", "tier": "front"})},
		{args: []string{"apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "kubia-ssa-other.yaml"},
			stdout: "pod/kubia-ssa serverside-applied\n",
			check: both(podLabels("default", "kubia-ssa", map[string]string{"app": "other", "tier": "front"}),
				managers("default", "kubia-ssa", "kubectl Apply", "other Apply"))},
		// kubectl lost the label to other: its own apply now conflicts.
		{args: []string{"apply", "--server-side", "-f", "kubia-ssa.yaml"},
			stderr: "error: Apply failed with 1 conflict: conflict with \"other\": .metadata.labels.app\n" + conflictHint},
		// An apply without a field the manager alone owned removes it.
		{args: []string{"apply", "--server-side", "--force-conflicts", "-f", "kubia-ssa-notier.yaml"},
			stdout: "pod/kubia-ssa serverside-applied\n",
			check:  podLabels("default", "kubia-ssa", map[string]string{"app": "kubia"})},

		// A client-side apply's fields belong to kubectl-client-side-apply,
		// an Update, named with its version.
		{args: []string{"apply", "-f", "kubia-csa.yaml"}, stdout: "pod/kubia-csa created\n",
			check: managers("default", "kubia-csa", "kubectl-client-side-apply Update")},
		{args: []string{"apply", "--server-side", "--field-manager=other", "-f", "kubia-csa-other.yaml"},
			stderr: "error: Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .metadata.labels.app\n" + conflictHint},
		// A later Update (kubectl label) adds its own entry.
		{args: []string{"label", "po", "kubia-csa", "env=debug"}, stdout: "pod/kubia-csa labeled\n",
			check: managers("default", "kubia-csa", "kubectl-client-side-apply Update", "kubectl-label Update")},
		// kubectl's own move from client-side to server-side apply: the
		// last-applied annotation lets the apply take what it lists (the
		// API server's lastAppliedManager), then kubectl patches the
		// client-side entries into its own (csaupgrade) and applies again.
		// kubectl-last-applied's apply changed nothing, so its entry has no
		// time and sorts first.
		{args: []string{"apply", "--server-side", "-f", "kubia-csa-v2.yaml"}, stdout: "pod/kubia-csa serverside-applied\n",
			check: both(podLabels("default", "kubia-csa", map[string]string{"app": "kubia-v2", "env": "debug"}),
				managers("default", "kubia-csa", "kubectl-last-applied Apply", "kubectl Apply", "kubectl-label Update"))},
	})
}
