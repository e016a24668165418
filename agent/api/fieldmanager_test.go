package api

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/integration"
)

// fmEntry is a managedFields entry as compared in these tests: whether
// it has a time, not the time.
type fmEntry struct {
	Manager, Operation, APIVersion, FieldsType, Fields string
	Timed                                              bool
}

// fmUpdate and fmApply are the entries of an Update and an Apply in v1
// that changed the object (so their time is set).
func fmUpdate(manager, fields string) fmEntry {
	return fmEntry{manager, "Update", "v1", "FieldsV1", fields, true}
}

func fmApply(manager, fields string) fmEntry {
	return fmEntry{manager, "Apply", "v1", "FieldsV1", fields, true}
}

// fmNoop is an Apply's entry when the apply changed nothing: the field
// manager records ownership but no time (the structured-merge updater
// returns no object for a no-op, and only a changed object is timed).
func fmNoop(manager, fields string) fmEntry {
	e := fmApply(manager, fields)
	e.Timed = false
	return e
}

// fmEntries summarizes obj's managedFields.
func fmEntries(t *testing.T, obj runtime.Object) []fmEntry {
	t.Helper()
	var out []fmEntry
	for _, e := range metaOf(obj).GetManagedFields() {
		var fields string
		if e.FieldsV1 != nil {
			fields = string(e.FieldsV1.Raw)
		}
		out = append(out, fmEntry{e.Manager, string(e.Operation), e.APIVersion, e.FieldsType, fields, e.Time != nil && !e.Time.IsZero()})
	}
	return out
}

func fmPod(labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "kubia", Namespace: "default", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "kubia", Image: "luksa/kubia"}}},
	}
}

// fmApplied is the pod kubectl apply --server-side sends for fmPod with
// these labels.
func fmApplied(labels string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\n  namespace: default\n  labels:\n" + labels +
		"spec:\n  containers:\n  - name: kubia\n    image: luksa/kubia\n"
}

const (
	// What an applier owns of fmApplied's spec: what it sent.
	fmPodSpecFields = `"f:spec":{"f:containers":{"k:{\"name\":\"kubia\"}":{".":{},"f:image":{},"f:name":{}}}}`
	// What an Update of fmPod owns of its spec: a Go object also sets
	// resources: {} (as kubectl's decoded objects do on the API server).
	fmPodSpecUpdated = `"f:spec":{"f:containers":{"k:{\"name\":\"kubia\"}":{".":{},"f:image":{},"f:name":{},"f:resources":{}}}}`
	fmCSA            = "kubectl-client-side-apply"
)

// TestFieldManagerUpdate: every create, replace and patch is an Update
// that records what its manager set or changed.
func TestFieldManagerUpdate(t *testing.T) {
	f, err := newFieldManager()
	if err != nil {
		t.Fatal(err)
	}
	created, err := f.Update(nil, fmPod(map[string]string{"app": "kubia"}), fmCSA)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	want := []fmEntry{fmUpdate(fmCSA, `{"f:metadata":{"f:labels":{".":{},"f:app":{}}},`+fmPodSpecUpdated+`}`)}
	if diff := cmp.Diff(want, fmEntries(t, created)); diff != "" {
		t.Errorf("create's managedFields (-want +got):\n%s", diff)
	}
	if got := created.GetObjectKind().GroupVersionKind().Kind; got != "Pod" {
		t.Errorf("create's kind = %q, want Pod", got)
	}

	// kubectl label: another manager adds a label; the creator keeps the
	// rest.
	before := created.DeepCopyObject()
	labelled := created.DeepCopyObject().(*corev1.Pod)
	labelled.Labels["env"] = "debug"
	updated, err := f.Update(created, labelled, "kubectl-label")
	if err != nil {
		t.Fatalf("label: %v", err)
	}
	want = append(want, fmUpdate("kubectl-label", `{"f:metadata":{"f:labels":{"f:env":{}}}}`))
	if diff := cmp.Diff(want, fmEntries(t, updated)); diff != "" {
		t.Errorf("label's managedFields (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, created); diff != "" {
		t.Errorf("Update changed the live object (-before +after):\n%s", diff)
	}

	// The same manager changing a field it already owns keeps one entry.
	relabelled := updated.DeepCopyObject().(*corev1.Pod)
	relabelled.Labels["env"] = "prod"
	again, err := f.Update(updated, relabelled, "kubectl-label")
	if err != nil {
		t.Fatalf("relabel: %v", err)
	}
	if diff := cmp.Diff(want, fmEntries(t, again)); diff != "" {
		t.Errorf("relabel's managedFields (-want +got):\n%s", diff)
	}

	// An object without TypeMeta (a decoded body may lack it) is found by
	// its Go type.
	bare := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	cm, err := f.Update(nil, bare, "kubectl-create")
	if err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	want = []fmEntry{fmUpdate("kubectl-create", `{"f:data":{".":{},"f:k":{}}}`)}
	if diff := cmp.Diff(want, fmEntries(t, cm)); diff != "" {
		t.Errorf("configmap's managedFields (-want +got):\n%s", diff)
	}

	if _, err := f.Update(nil, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, "m"); err == nil {
		t.Error("Update of a Node (not a kind the API writes) did not fail")
	}
}

// TestFieldManagerApply runs server-side applies against a pod created by
// kubectl's client-side apply (an Update by kubectl-client-side-apply), as
// `kubectl apply --server-side` after `kubectl apply` does.
func TestFieldManagerApply(t *testing.T) {
	csaEntry := fmUpdate(fmCSA, `{"f:metadata":{"f:labels":{".":{},"f:app":{}}},`+fmPodSpecUpdated+`}`)
	tests := []struct {
		name    string
		manager string
		patch   string
		force   bool
		// want on success
		wantLabels map[string]string
		wantFields []fmEntry
		// or want the error
		wantCode    int32
		wantReason  metav1.StatusReason
		wantMessage string
		wantCauses  []metav1.StatusCause
	}{{
		name:    "same values are shared, no conflict",
		manager: "kubectl",
		patch:   fmApplied("    app: kubia\n"),
		// The applier co-owns every field it set to the value it has;
		// nothing changed, so its entry has no time. Apply entries sort
		// before Update ones.
		wantLabels: map[string]string{"app": "kubia"},
		wantFields: []fmEntry{fmNoop("kubectl", `{"f:metadata":{"f:labels":{"f:app":{}}},`+fmPodSpecFields+`}`), csaEntry},
	}, {
		name:        "a changed value another manager owns conflicts",
		manager:     "kubectl",
		patch:       fmApplied("    app: other\n"),
		wantCode:    http.StatusConflict,
		wantReason:  metav1.StatusReasonConflict,
		wantMessage: `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .metadata.labels.app`,
		wantCauses: []metav1.StatusCause{{
			Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-client-side-apply" using v1`, Field: ".metadata.labels.app",
		}},
	}, {
		name:    "two conflicts are listed by manager",
		manager: "other",
		patch: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\n  namespace: default\n  labels:\n    app: other\n" +
			"spec:\n  containers:\n  - name: kubia\n    image: luksa/kubia:v2\n",
		wantCode:   http.StatusConflict,
		wantReason: metav1.StatusReasonConflict,
		wantMessage: "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using v1:\n" +
			"- .metadata.labels.app\n- .spec.containers[name=\"kubia\"].image",
		wantCauses: []metav1.StatusCause{{
			Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-client-side-apply" using v1`, Field: ".metadata.labels.app",
		}, {
			Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-client-side-apply" using v1`, Field: `.spec.containers[name="kubia"].image`,
		}},
	}, {
		name:       "force takes the conflicting field over",
		manager:    "kubectl",
		patch:      fmApplied("    app: other\n"),
		force:      true,
		wantLabels: map[string]string{"app": "other"},
		wantFields: []fmEntry{
			fmApply("kubectl", `{"f:metadata":{"f:labels":{"f:app":{}}},`+fmPodSpecFields+`}`),
			// The taken label leaves the map itself: an empty set.
			fmUpdate(fmCSA, `{"f:metadata":{"f:labels":{}},`+fmPodSpecUpdated+`}`),
		},
	}, {
		name:    "an applied status is not owned (the strategy resets it)",
		manager: "kubectl",
		patch:   fmApplied("    app: kubia\n") + "status:\n  phase: Running\n",
		// The apply's entry has no status; the object changed (its
		// status), so the entry has a time. The write path keeps the
		// live status (the strategy's PrepareForUpdate).
		wantLabels: map[string]string{"app": "kubia"},
		wantFields: []fmEntry{fmApply("kubectl", `{"f:metadata":{"f:labels":{"f:app":{}}},`+fmPodSpecFields+`}`), csaEntry},
	}, {
		name:        "a patch of another kind is refused",
		manager:     "kubectl",
		patch:       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubia\n",
		wantCode:    http.StatusBadRequest,
		wantReason:  metav1.StatusReasonBadRequest,
		wantMessage: "invalid object type: /v1, Kind=ConfigMap",
	}, {
		name:        "managedFields in the patch are refused",
		manager:     "kubectl",
		patch:       "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\n  namespace: default\n  managedFields:\n  - manager: x\n",
		wantCode:    http.StatusBadRequest,
		wantReason:  metav1.StatusReasonBadRequest,
		wantMessage: "metadata.managedFields must be nil",
	}, {
		// kube-apiserver v1.37's answer, a 500 without a reason
		// (kubernetes/kubernetes#139253); kubectl's client-side
		// validation usually refuses such a field first.
		name:        "a field the schema does not declare",
		manager:     "kubectl",
		patch:       fmApplied("    app: kubia\n") + "  bogus: 1\n",
		wantCode:    http.StatusInternalServerError,
		wantReason:  "",
		wantMessage: "failed to create typed patch object (default/kubia; /v1, Kind=Pod): .spec.bogus: field not declared in schema",
	}, {
		name:        "YAML that does not parse is a bad request",
		manager:     "kubectl",
		patch:       "metadata: [",
		wantCode:    http.StatusBadRequest,
		wantReason:  metav1.StatusReasonBadRequest,
		wantMessage: "error decoding YAML: error converting YAML to JSON: yaml: line 1: did not find expected node content",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newFieldManager()
			if err != nil {
				t.Fatal(err)
			}
			live, err := f.Update(nil, fmPod(map[string]string{"app": "kubia"}), fmCSA)
			if err != nil {
				t.Fatal(err)
			}
			before := live.DeepCopyObject()
			got, err := f.Apply(live, []byte(tt.patch), tt.manager, tt.force)
			if diff := cmp.Diff(before, live); diff != "" {
				t.Errorf("Apply changed the live object (-before +after):\n%s", diff)
			}
			if tt.wantCode != 0 {
				var se *apierrors.StatusError
				if !errors.As(err, &se) {
					t.Fatalf("Apply = %v, %v; want a %d StatusError", got, err, tt.wantCode)
				}
				st := se.Status()
				if st.Code != tt.wantCode || st.Reason != tt.wantReason || st.Message != tt.wantMessage {
					t.Errorf("Apply's status = %d %q %q, want %d %q %q", st.Code, st.Reason, st.Message, tt.wantCode, tt.wantReason, tt.wantMessage)
				}
				var causes []metav1.StatusCause
				if st.Details != nil {
					causes = st.Details.Causes
				}
				if diff := cmp.Diff(tt.wantCauses, causes); diff != "" {
					t.Errorf("Apply's causes (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			pod, ok := got.(*corev1.Pod)
			if !ok {
				t.Fatalf("Apply returned a %T, want a *v1.Pod", got)
			}
			if diff := cmp.Diff(tt.wantLabels, pod.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFields, fmEntries(t, got)); diff != "" {
				t.Errorf("managedFields (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFieldManagerApplySequence follows one object through the applies
// of a person's workflow: create by apply, a second apply that drops a
// field, another manager's apply, a forced one.
func TestFieldManagerApplySequence(t *testing.T) {
	f, err := newFieldManager()
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		manager    string
		patch      string
		force      bool
		wantErr    string // the error's message, or
		wantLabels map[string]string
		wantFields []fmEntry
	}
	steps := []step{{
		// kubectl apply --server-side of a new object creates it.
		manager:    "kubectl",
		patch:      fmApplied("    app: kubia\n    tier: front\n"),
		wantLabels: map[string]string{"app": "kubia", "tier": "front"},
		wantFields: []fmEntry{fmApply("kubectl", `{"f:metadata":{"f:labels":{"f:app":{},"f:tier":{}}},`+fmPodSpecFields+`}`)},
	}, {
		// An apply without a field the manager alone owned removes it.
		manager:    "kubectl",
		patch:      fmApplied("    app: kubia\n"),
		wantLabels: map[string]string{"app": "kubia"},
		wantFields: []fmEntry{fmApply("kubectl", `{"f:metadata":{"f:labels":{"f:app":{}}},`+fmPodSpecFields+`}`)},
	}, {
		// Another applier changing it conflicts with the Apply manager,
		// named without "using": an Apply entry has no version in the
		// message.
		manager: "other",
		patch:   "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\n  namespace: default\n  labels:\n    app: web\n",
		wantErr: `Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.app`,
	}, {
		manager:    "other",
		patch:      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\n  namespace: default\n  labels:\n    app: web\n",
		force:      true,
		wantLabels: map[string]string{"app": "web"},
		wantFields: []fmEntry{
			fmApply("kubectl", `{`+fmPodSpecFields+`}`),
			fmApply("other", `{"f:metadata":{"f:labels":{"f:app":{}}}}`),
		},
	}, {
		// kubectl's next apply without the label it lost gives up
		// nothing it owns and leaves other's label alone.
		manager:    "kubectl",
		patch:      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\n  namespace: default\nspec:\n  containers:\n  - name: kubia\n    image: luksa/kubia\n",
		wantLabels: map[string]string{"app": "web"},
		wantFields: []fmEntry{
			fmApply("kubectl", `{`+fmPodSpecFields+`}`),
			fmApply("other", `{"f:metadata":{"f:labels":{"f:app":{}}}}`),
		},
	}}
	var live runtime.Object
	for i, s := range steps {
		got, err := f.Apply(live, []byte(s.patch), s.manager, s.force)
		if s.wantErr != "" {
			if err == nil || err.Error() != s.wantErr || !apierrors.IsConflict(err) {
				t.Fatalf("step %d: Apply = %v, want the conflict %q", i, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: Apply: %v", i, err)
		}
		pod := got.(*corev1.Pod)
		if diff := cmp.Diff(s.wantLabels, pod.Labels); diff != "" {
			t.Errorf("step %d: labels (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(s.wantFields, fmEntries(t, got)); diff != "" {
			t.Errorf("step %d: managedFields (-want +got):\n%s", i, diff)
		}
		live = got
	}
}

// TestFieldManagerKinds: namespaces, configmaps and secrets are applied,
// edited and re-applied as pods are: a value an edit changed conflicts
// with the edit's manager until the apply forces it back.
func TestFieldManagerKinds(t *testing.T) {
	tests := []struct {
		name       string
		patch      string
		wantFields string
		check      func(runtime.Object) bool // the applied values are there
		edit       func(runtime.Object)      // kubectl edit's change
		conflict   string                    // the field it conflicts on
	}{{
		name:       "namespace",
		patch:      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: custom-namespace\n  labels:\n    team: a\n",
		wantFields: `{"f:metadata":{"f:labels":{"f:team":{}}}}`,
		check: func(o runtime.Object) bool {
			ns, ok := o.(*corev1.Namespace)
			return ok && ns.Name == "custom-namespace" && ns.Labels["team"] == "a"
		},
		edit:     func(o runtime.Object) { o.(*corev1.Namespace).Labels["team"] = "b" },
		conflict: ".metadata.labels.team",
	}, {
		name:       "configmap",
		patch:      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\ndata:\n  a: \"1\"\n  b: \"2\"\n",
		wantFields: `{"f:data":{"f:a":{},"f:b":{}}}`,
		check: func(o runtime.Object) bool {
			cm, ok := o.(*corev1.ConfigMap)
			return ok && cm.Data["a"] == "1" && cm.Data["b"] == "2"
		},
		edit:     func(o runtime.Object) { o.(*corev1.ConfigMap).Data["a"] = "9" },
		conflict: ".data.a",
	}, {
		name:       "secret",
		patch:      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\ntype: Opaque\ndata:\n  password: aHVudGVyMg==\n",
		wantFields: `{"f:data":{"f:password":{}},"f:type":{}}`,
		check: func(o runtime.Object) bool {
			s, ok := o.(*corev1.Secret)
			return ok && string(s.Data["password"]) == "hunter2" && s.Type == corev1.SecretTypeOpaque
		},
		edit:     func(o runtime.Object) { o.(*corev1.Secret).Data["password"] = []byte("changed") },
		conflict: ".data.password",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newFieldManager()
			if err != nil {
				t.Fatal(err)
			}
			applied, err := f.Apply(nil, []byte(tt.patch), "kubectl", false)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !tt.check(applied) {
				t.Errorf("Apply's object lacks the applied values: %+v", applied)
			}
			want := []fmEntry{fmApply("kubectl", tt.wantFields)}
			if diff := cmp.Diff(want, fmEntries(t, applied)); diff != "" {
				t.Errorf("managedFields (-want +got):\n%s", diff)
			}

			changed := applied.DeepCopyObject()
			tt.edit(changed)
			edited, err := f.Update(applied, changed, "kubectl-edit")
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			_, err = f.Apply(edited, []byte(tt.patch), "kubectl", false)
			wantErr := `Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: ` + tt.conflict
			if !apierrors.IsConflict(err) || err.Error() != wantErr {
				t.Fatalf("re-apply after the edit = %v, want the conflict %q", err, wantErr)
			}
			forced, err := f.Apply(edited, []byte(tt.patch), "kubectl", true)
			if err != nil {
				t.Fatalf("forced re-apply: %v", err)
			}
			if !tt.check(forced) {
				t.Errorf("the forced apply did not set the applied values back: %+v", forced)
			}
			if diff := cmp.Diff(want, fmEntries(t, forced)); diff != "" {
				t.Errorf("managedFields after the forced apply (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFieldManagerNewObjectKinds: a new object's kind comes from the
// patch; one the API does not write is the version check's refusal.
func TestFieldManagerNewObjectKinds(t *testing.T) {
	f, err := newFieldManager()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ patch, want string }{
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n", "invalid object type: apps/v1, Kind=Deployment"},
		{"metadata:\n  name: d\n", "invalid object type: /, Kind="},
		{"apiVersion: v1\nkind: Node\nmetadata:\n  name: n\n", "invalid object type: /v1, Kind=Node"},
	}
	for _, tt := range tests {
		_, err := f.Apply(nil, []byte(tt.patch), "kubectl", false)
		if !apierrors.IsBadRequest(err) || err.Error() != tt.want {
			t.Errorf("Apply(nil, %q) = %v, want the bad request %q", tt.patch, err, tt.want)
		}
	}
	// An empty object of the URL's kind (what the write path may pass for
	// a missing object) holds the patch to that kind.
	_, err = f.Apply(&corev1.Pod{}, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n"), "kubectl", false)
	if !apierrors.IsBadRequest(err) || err.Error() != "invalid object type: /v1, Kind=Namespace" {
		t.Errorf("Apply of a Namespace to a new pod = %v, want the version check's refusal", err)
	}
}

// TestFieldManagerHandWritten: an object from a manifest file a person
// wrote has no managedFields, like an object that predates server-side
// apply on an API server: Updates leave it untracked, and the first apply
// gives what it finds to "before-first-apply", so an apply that changes a
// value conflicts with that.
func TestFieldManagerHandWritten(t *testing.T) {
	f, err := newFieldManager()
	if err != nil {
		t.Fatal(err)
	}
	hand := fmPod(map[string]string{"app": "kubia"})
	hand.UID = "c96e5ca9-9d0f-3a45-a5b3-faea702d8c8d"
	labelled := hand.DeepCopy()
	labelled.Labels["env"] = "debug"
	got, err := f.Update(hand, labelled, "kubectl-label")
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if mf := metaOf(got).GetManagedFields(); mf != nil {
		t.Errorf("an Update of an untracked object tracked it: %+v", mf)
	}

	_, err = f.Apply(hand, []byte(fmApplied("    app: other\n")), "kubectl", false)
	want := `Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .metadata.labels.app`
	if !apierrors.IsConflict(err) || err.Error() != want {
		t.Fatalf("Apply changing a hand-written value = %v, want the conflict %q", err, want)
	}
	applied, err := f.Apply(hand, []byte(fmApplied("    app: kubia\n")), "kubectl", false)
	if err != nil {
		t.Fatalf("Apply of the same values: %v", err)
	}
	wantFields := []fmEntry{
		fmNoop("kubectl", `{"f:metadata":{"f:labels":{"f:app":{}}},`+fmPodSpecFields+`}`),
		fmUpdate("before-first-apply", `{"f:metadata":{"f:labels":{".":{},"f:app":{}}},`+fmPodSpecUpdated+`}`),
	}
	// before-first-apply's entry carries the time of the apply that made it.
	if diff := cmp.Diff(wantFields, fmEntries(t, applied)); diff != "" {
		t.Errorf("managedFields (-want +got):\n%s", diff)
	}
}

// TestFieldManagerReboot: ownership survives the flash. An object as the
// write path saves it, rendered as its manifest document and decoded
// again as at the next boot (agent/manifest's Render and Decode, the
// flash's own code), keeps its managedFields, and another manager's
// apply conflicts as it did before.
func TestFieldManagerReboot(t *testing.T) {
	f, err := newFieldManager()
	if err != nil {
		t.Fatal(err)
	}
	applied, err := f.Apply(nil, []byte(fmApplied("    app: kubia\n")), "kubectl", false)
	if err != nil {
		t.Fatal(err)
	}
	labelled := applied.DeepCopyObject().(*corev1.Pod)
	labelled.Labels["env"] = "debug"
	live, err := f.Update(applied, labelled, "kubectl-label")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := manifest.Render(live)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	set := manifest.Decode("kubia.yaml", doc, manifest.Options{NodeName: "board-1"})
	if len(set.Errors) > 0 || len(set.Pods) != 1 {
		t.Fatalf("decode the rendered manifest: %d pods, errors %v\n%s", len(set.Pods), set.Errors, doc)
	}
	rebooted := set.Pods[0]
	if diff := cmp.Diff(metaOf(live).GetManagedFields(), rebooted.ManagedFields); diff != "" {
		t.Errorf("managedFields after the flash (-saved +decoded):\n%s", diff)
	}
	tests := []struct{ patch, want string }{
		{fmApplied("    app: other\n"), `Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.app`},
		{fmApplied("    app: kubia\n    env: prod\n"), `Apply failed with 1 conflict: conflict with "kubectl-label" using v1: .metadata.labels.env`},
	}
	for _, tt := range tests {
		if _, err := f.Apply(rebooted, []byte(tt.patch), "other", false); !apierrors.IsConflict(err) || err.Error() != tt.want {
			t.Errorf("apply after the reboot = %v, want the conflict %q", err, tt.want)
		}
	}
}

// TestFieldManagerApplyPatchHTTP: PATCH with application/apply-patch+yaml
// through the write path. A missing object is created from the patch, of
// the URL's kind only: a patch of another kind is the API server's version
// check's 400, and nothing is created.
func TestFieldManagerApplyPatchHTTP(t *testing.T) {
	const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n"
	tests := []struct {
		name, path string
		wantCode   int
		wantBody   string // the Status message, or the object's managedFields manager
		created    bool
	}{
		{"to configmaps", "/api/v1/namespaces/default/configmaps/x?fieldManager=m", http.StatusCreated, "m", true},
		{"to pods", "/api/v1/namespaces/default/pods/x?fieldManager=m", http.StatusBadRequest, "invalid object type: /v1, Kind=ConfigMap", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, st, _ := newWriteServer(t)
			resp, body := do(t, srv, http.MethodPatch, tt.path, "application/apply-patch+yaml", cm)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("PATCH %s = %d %s, want %d", tt.path, resp.StatusCode, body, tt.wantCode)
			}
			var got string
			if tt.wantCode >= 400 {
				got = decode[metav1.Status](t, body).Message
			} else if mf := decode[corev1.ConfigMap](t, body).ManagedFields; len(mf) == 1 && mf[0].Operation == metav1.ManagedFieldsOperationApply {
				got = mf[0].Manager
			}
			if got != tt.wantBody {
				t.Errorf("PATCH %s answered %q, want %q: %s", tt.path, got, tt.wantBody, body)
			}
			if _, ok := st.Get(store.KindConfigMap, "default", "x"); ok != tt.created {
				t.Errorf("configmap x in the store: %v, want %v", ok, tt.created)
			}
		})
	}
}

// TestFieldManagerSchema: the embedded cut of client-go's schemas names
// only types it defines (a missing one would fail an apply only when a
// request reaches that field), and it is what fieldmanager_gen.go makes
// of client-go at the module's Kubernetes version today.
func TestFieldManagerSchema(t *testing.T) {
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^- name: (\S+)$`).FindAllStringSubmatch(schemaYAML, -1) {
		defined[m[1]] = true
	}
	for _, kind := range []string{"Pod", "Namespace", "ConfigMap", "Secret"} {
		if !defined["io.k8s.api.core.v1."+kind] {
			t.Errorf("the schema lacks io.k8s.api.core.v1.%s", kind)
		}
	}
	var missing []string
	for _, m := range regexp.MustCompile(`namedType: (\S+)`).FindAllStringSubmatch(schemaYAML, -1) {
		if !defined[m[1]] {
			missing = append(missing, m[1])
		}
	}
	if len(missing) > 0 {
		t.Errorf("the schema refers to types it does not define: %v", missing)
	}

	out := filepath.Join(t.TempDir(), "schema.yaml")
	cmd := exec.Command("go", "run", "fieldmanager_gen.go", "-o", out)
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		integration.Unavailable(t, "regenerating the schema needs k8s.io/client-go in the module cache (go mod download k8s.io/client-go@v0.37.2): %v\n%s", err, b)
	}
	regenerated, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(regenerated) != schemaYAML {
		t.Errorf("fieldmanager_schema.yaml is not what fieldmanager_gen.go makes now: run go generate ./agent/api")
	}
}

// FuzzFieldManagerApply: any patch, applied by any manager to a tracked
// pod or to nothing, gives either a StatusError or an object of a kind
// the API writes whose entries are the applier's and the creator's; it
// never panics and never changes the live object. Its corpus is in
// testdata/fuzz/FuzzFieldManagerApply.
func FuzzFieldManagerApply(f *testing.F) {
	f.Add([]byte(fmApplied("    app: other\n")), "kubectl", false, true)
	f.Add([]byte(fmApplied("    app: other\n")), "other", true, true)
	f.Add([]byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: b\n"), "kubectl", false, false)
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\nspec:\n  containers:\n  - name: a\n  - name: a\n"), "kubectl", false, true)
	f.Add([]byte("kind: Pod\napiVersion: v1\nmetadata: {labels: null}\nstatus: {phase: 3}\n"), "x", true, true)
	f.Add([]byte("null"), "kubectl", false, false)
	f.Add([]byte("- a\n- b\n"), "kubectl", false, true)
	fm, err := newFieldManager()
	if err != nil {
		f.Fatal(err)
	}
	live, err := fm.Update(nil, fmPod(map[string]string{"app": "kubia"}), fmCSA)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, patch []byte, manager string, force, existing bool) {
		var base runtime.Object
		if existing {
			base = live.DeepCopyObject()
		}
		out, err := fm.Apply(base, patch, manager, force)
		if existing {
			if diff := cmp.Diff(live, base); diff != "" {
				t.Fatalf("Apply changed the live object (-before +after):\n%s", diff)
			}
		}
		if err != nil {
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Apply's error is not a StatusError: %T %v", err, err)
			}
			return
		}
		switch out.(type) {
		case *corev1.Pod, *corev1.Namespace, *corev1.ConfigMap, *corev1.Secret:
		default:
			t.Fatalf("Apply returned a %T", out)
		}
		// An apply that sets nothing owns nothing and has no entry; every
		// entry there is belongs to the applier, the creator, or
		// before-first-apply, in v1 and FieldsV1. The field manager calls
		// a nameless manager "unknown" (the API server refuses an apply
		// without fieldManager before it gets there), and its name goes
		// through JSON, where each invalid UTF-8 byte becomes U+FFFD.
		applier := string([]rune(manager))
		if applier == "" {
			applier = "unknown"
		}
		for _, e := range metaOf(out).GetManagedFields() {
			ok := (e.Manager == applier && e.Operation == metav1.ManagedFieldsOperationApply) ||
				(e.Manager == fmCSA && e.Operation == metav1.ManagedFieldsOperationUpdate && existing)
			if !ok || e.APIVersion != "v1" || e.FieldsType != "FieldsV1" {
				t.Errorf("unexpected managedFields entry %+v after an apply by %q", e, manager)
			}
		}
	})
}
