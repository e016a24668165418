package reconcile

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// A desired pod whose UID runs already but whose metadata changed (kubectl
// label, annotate, a server-side apply's managedFields) is republished at
// once with the new metadata, in one MODIFIED, and no container is
// touched, as kubelet does for a pod update that keeps the spec (a
// changed spec: image_update_test.go).
func TestMetadataUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(p *corev1.Pod)
		// wantModified: the watch sees one MODIFIED, else nothing.
		wantModified bool
	}{{
		name:         "label added",
		change:       func(p *corev1.Pod) { p.Labels["creation_method"] = "manual" },
		wantModified: true,
	}, {
		name:         "label overwritten",
		change:       func(p *corev1.Pod) { p.Labels["env"] = "debug" },
		wantModified: true,
	}, {
		name:         "label removed",
		change:       func(p *corev1.Pod) { delete(p.Labels, "env") },
		wantModified: true,
	}, {
		name:         "annotation added",
		change:       func(p *corev1.Pod) { p.Annotations = map[string]string{"mycompany.com/someannotation": "foo bar"} },
		wantModified: true,
	}, {
		name: "managedFields",
		change: func(p *corev1.Pod) {
			p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{"f:env":{}}}}`)}}}
		},
		wantModified: true,
	}, {
		name: "ownerReferences",
		change: func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "board", UID: "n1"}}
		},
		wantModified: true,
	}, {
		name:   "unchanged",
		change: func(p *corev1.Pod) {},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := fake.New()
				rt.AddImage("busybox:1.36")
				e := newEnv(t, rt, "")
				e.watchPods()
				pod := newTestPod("u1", corev1.RestartPolicyAlways, "app", "web")
				pod.Labels = map[string]string{"app": "kubia", "env": "prod"}
				e.m.SetDesired([]*corev1.Pod{pod})
				e.run()
				defer e.stop()
				advance(time.Minute)
				before := e.pub.get("u1")
				pods := e.watch()
				calls := len(rt.Calls())

				changed := pod.DeepCopy()
				tc.change(changed)
				e.m.SetDesired([]*corev1.Pod{changed})
				synctest.Wait() // no time passes: the pod is republished at once

				if got := rt.Calls()[calls:]; len(got) != 0 {
					t.Errorf("the runtime was called: %q", got)
				}
				got := e.pub.get("u1")
				if diff := cmp.Diff(changed.ObjectMeta, got.ObjectMeta, ignoreSetByAgent()); diff != "" {
					t.Errorf("published metadata (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(before.Spec, got.Spec); diff != "" {
					t.Errorf("published spec changed (-before +after):\n%s", diff)
				}
				if diff := cmp.Diff(before.Status, got.Status); diff != "" {
					t.Errorf("status changed (-before +after):\n%s", diff)
				}
				events := drainEvents(pods)
				var want []string
				if tc.wantModified {
					want = []string{"MODIFIED u1 app=running restarts=0 web=running restarts=0"}
				}
				var gotEvents []string
				for _, ev := range events {
					gotEvents = append(gotEvents, describeEvent(ev, time.Time{}))
				}
				if diff := cmp.Diff(want, gotEvents); diff != "" {
					t.Fatalf("watch (-want +got):\n%s", diff)
				}
				if tc.wantModified {
					p := events[0].Object.(*corev1.Pod)
					if diff := cmp.Diff(changed.ObjectMeta, p.ObjectMeta, ignoreSetByAgent()); diff != "" {
						t.Errorf("watched metadata (-want +got):\n%s", diff)
					}
				}
			})
		})
	}
}

// ignoreSetByAgent leaves out what the agent and its store set on a
// published pod.
func ignoreSetByAgent() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		switch p.String() {
		case "ResourceVersion", "CreationTimestamp":
			return true
		}
		return false
	}, cmp.Ignore())
}
