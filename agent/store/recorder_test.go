package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func events(t *testing.T, s *Store) []*corev1.Event {
	t.Helper()
	objs, _ := s.List(KindEvent, "")
	var out []*corev1.Event
	for _, o := range objs {
		out = append(out, o.(*corev1.Event))
	}
	return out
}

func TestRecorderEvent(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	r := NewRecorder(s, "board-1", fixedClock(&now))
	p := pod("web", "nginx", "Pending")
	p.ResourceVersion = "42"

	r.EventfOnField(p, "spec.containers{web}", corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", "nginx:1")
	got := events(t, s)
	if len(got) != 1 {
		t.Fatalf("got %d events, want 1", len(got))
	}
	ev := got[0]
	ts := metav1.NewTime(t0)
	want := corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("nginx.%x", t0.UnixNano()), Namespace: "web",
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: "web", Name: "nginx", UID: "uid-nginx", APIVersion: "v1",
			ResourceVersion: "42", FieldPath: "spec.containers{web}",
		},
		Reason:              "Pulled",
		Message:             `Container image "nginx:1" already present on machine`,
		Source:              corev1.EventSource{Component: "kubelet", Host: "board-1"},
		FirstTimestamp:      ts,
		LastTimestamp:       ts,
		Count:               1,
		Type:                "Normal",
		ReportingController: "kubelet",
		ReportingInstance:   "board-1",
	}
	ev.TypeMeta = metav1.TypeMeta{}
	ev.UID, ev.ResourceVersion, ev.CreationTimestamp = "", "", metav1.Time{}
	if diff := cmp.Diff(want, *ev); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

func TestRecorderCountsRepeats(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	r := NewRecorder(s, "board-1", fixedClock(&now))
	p := pod("default", "crash", "Running")

	for i := range 3 {
		now = t0.Add(time.Duration(i) * 10 * time.Second)
		r.EventfOnField(p, "spec.containers{app}", corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container app in pod %s", "crash_default(uid)")
	}
	r.Eventf(p, corev1.EventTypeNormal, "Scheduled", "other reason")
	r.Eventf(p, "Bogus", "Ignored", "an unsupported type is dropped, as client-go does")

	type row struct {
		Reason      string
		Count       int32
		First, Last time.Time
	}
	var got []row
	for _, e := range events(t, s) {
		got = append(got, row{e.Reason, e.Count, e.FirstTimestamp.Time, e.LastTimestamp.Time})
	}
	want := []row{
		{"BackOff", 3, t0, t0.Add(20 * time.Second)},
		{"Scheduled", 1, t0.Add(20 * time.Second), t0.Add(20 * time.Second)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestRecorderCombinesSimilarEvents(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	r := NewRecorder(s, "board-1", fixedClock(&now))
	p := pod("default", "probe", "Running")
	for i := range 12 {
		now = t0.Add(time.Duration(i) * time.Second)
		r.Eventf(p, corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: attempt %d", i)
	}
	evs := events(t, s)
	// Nine distinct events, then the tenth and later become one combined
	// event whose count grows.
	if len(evs) != 10 {
		t.Fatalf("got %d events, want 10", len(evs))
	}
	combined := 0
	for _, e := range evs {
		if e.Message == combinedPrefix+"Readiness probe failed: attempt 11" {
			combined++
			if e.Count != 3 {
				t.Errorf("combined event count = %d, want 3", e.Count)
			}
		}
	}
	if combined != 1 {
		t.Errorf("found %d combined events, want 1: %v", combined, evs)
	}
}

func TestRecorderNodeReference(t *testing.T) {
	s := New(nil)
	r := NewRecorder(s, "board-1", nil)
	r.Eventf(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "board-1", UID: "real-uid"}}, corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	evs := events(t, s)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	want := corev1.ObjectReference{Kind: "Node", Name: "board-1", UID: "board-1", APIVersion: "v1"}
	if diff := cmp.Diff(want, evs[0].InvolvedObject); diff != "" {
		t.Errorf("node involvedObject (-want +got):\n%s", diff)
	}
	if evs[0].Namespace != "default" {
		t.Errorf("node event namespace = %q, want default", evs[0].Namespace)
	}
}

func TestEventRetention(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	r := NewRecorder(s, "n", fixedClock(&now))
	p := pod("default", "p", "Running")
	r.Eventf(p, corev1.EventTypeNormal, "Old", "first")
	now = t0.Add(30 * time.Minute)
	r.Eventf(p, corev1.EventTypeNormal, "Newer", "second")
	now = t0.Add(EventTTL + time.Minute)
	got := events(t, s)
	if len(got) != 1 || got[0].Reason != "Newer" {
		t.Errorf("after the TTL: events %v, want only Newer", got)
	}

	ch, err := s.Watch(t.Context(), KindEvent, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxEvents + 5 {
		r.Eventf(p, corev1.EventTypeNormal, fmt.Sprintf("R%04d", i), "m")
	}
	got = events(t, s)
	if len(got) != MaxEvents {
		t.Fatalf("kept %d events, want %d", len(got), MaxEvents)
	}
	for _, e := range got {
		if e.Reason < "R0005" {
			t.Errorf("kept old event %s", e.Reason)
		}
	}
	// Events at the same instant still get distinct names.
	if got[0].Name == got[1].Name {
		t.Errorf("two events named %s", got[0].Name)
	}
	_ = ch // the watcher overflowed long ago; it must have been dropped, not block
}
