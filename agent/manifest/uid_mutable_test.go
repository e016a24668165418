package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// A pod's UID leaves out what the API server lets a pod update change
// (images, activeDeadlineSeconds, tolerations, terminationGracePeriodSeconds),
// so such an edit keeps the pod, as `kubectl set image` keeps it on a
// cluster; every other spec change still gives a new UID. The decoded pod
// keeps the fields left out of the hash.
func TestUIDLeavesOutMutableSpec(t *testing.T) {
	const base = `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  initContainers:
  - {name: setup, image: "busybox:1.36", imagePullPolicy: IfNotPresent, command: ["true"]}
  containers:
  - {name: main, image: "nginx:1.29", imagePullPolicy: IfNotPresent}
  - {name: side, image: "busybox:1.36", imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
`
	decode := func(t *testing.T, doc string) *corev1.Pod {
		t.Helper()
		s := Decode("a.yaml", []byte(doc), testOpts)
		if len(s.Pods) != 1 || len(s.Errors) != 0 {
			t.Fatalf("want one pod and no error, got %+v", summarize(s))
		}
		return s.Pods[0]
	}
	want := decode(t, base).UID

	tests := []struct {
		name string
		doc  string
		same bool
		// check, when set, says what the decoded pod holds.
		check func(p *corev1.Pod) any
		want  any
	}{{
		name:  "a container's image",
		doc:   replaceOnce(t, base, `image: "nginx:1.29"`, `image: "nginx:1.30"`),
		same:  true,
		check: func(p *corev1.Pod) any { return p.Spec.Containers[0].Image },
		want:  "nginx:1.30",
	}, {
		name:  "an init container's image",
		doc:   replaceOnce(t, base, `{name: setup, image: "busybox:1.36"`, `{name: setup, image: "busybox:1.37"`),
		same:  true,
		check: func(p *corev1.Pod) any { return p.Spec.InitContainers[0].Image },
		want:  "busybox:1.37",
	}, {
		name:  "activeDeadlineSeconds set",
		doc:   base + "  activeDeadlineSeconds: 600\n",
		same:  true,
		check: func(p *corev1.Pod) any { return *p.Spec.ActiveDeadlineSeconds },
		want:  int64(600),
	}, {
		name: "a toleration added",
		doc:  base + "  tolerations: [{key: dedicated, operator: Equal, value: edge, effect: NoSchedule}]\n",
		same: true,
		check: func(p *corev1.Pod) any {
			var keys []string
			for _, tol := range p.Spec.Tolerations {
				keys = append(keys, tol.Key+"/"+string(tol.Effect))
			}
			return keys
		},
		want: []string{"dedicated/NoSchedule", "/NoExecute"},
	}, {
		name:  "terminationGracePeriodSeconds changed",
		doc:   base + "  terminationGracePeriodSeconds: 5\n",
		same:  true,
		check: func(p *corev1.Pod) any { return *p.Spec.TerminationGracePeriodSeconds },
		want:  int64(5),
	}, {
		name: "every mutable field at once, with a label",
		doc: replaceOnce(t, replaceOnce(t, base, `image: "nginx:1.29"`, `image: "nginx:1.30"`), "metadata: {name: web}", "metadata: {name: web, labels: {a: b}}") +
			"  activeDeadlineSeconds: 60\n  terminationGracePeriodSeconds: 1\n  tolerations: [{operator: Exists}]\n",
		same: true,
	}, {
		name: "a command changed",
		doc:  replaceOnce(t, base, `command: [sleep, "3600"]`, `command: [sleep, "60"]`),
	}, {
		name: "imagePullPolicy changed",
		doc:  replaceOnce(t, base, `image: "nginx:1.29", imagePullPolicy: IfNotPresent`, `image: "nginx:1.29", imagePullPolicy: Always`),
	}, {
		name: "a container renamed",
		doc:  replaceOnce(t, base, "name: side", "name: other"),
	}, {
		name: "a container added",
		doc:  base + "  - {name: third, image: \"busybox:1.36\", imagePullPolicy: IfNotPresent}\n",
	}, {
		// The API server keeps a stored imagePullPolicy on update; a
		// file that leaves it to the default changes it with a move to
		// :latest, and that is a new pod.
		name: "an image moved to :latest with the pull policy defaulted",
		doc:  replaceOnce(t, base, `image: "nginx:1.29", imagePullPolicy: IfNotPresent`, `image: "nginx:latest"`),
	}, {
		name: "restartPolicy changed",
		doc:  base + "  restartPolicy: Never\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decode(t, tt.doc)
			if got := p.UID == want; got != tt.same {
				t.Errorf("uid %s, base %s: same = %v, want %v", p.UID, want, got, tt.same)
			}
			if tt.check != nil {
				if diff := cmp.Diff(tt.want, tt.check(p)); diff != "" {
					t.Errorf("decoded pod (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// replaceOnce replaces old, which must occur once, in s.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times in the document, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}
