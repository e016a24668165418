package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

func pod(ns, name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func names(objs []runtime.Object) []string {
	var out []string
	for _, o := range objs {
		_, m, _ := kindOf(o)
		out = append(out, m.Namespace+"/"+m.Name+"@"+m.ResourceVersion)
	}
	return out
}

func TestPutGetList(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	for _, p := range []*corev1.Pod{pod("b", "x", "Running"), pod("a", "y", "Pending"), pod("a", "x", "Running")} {
		if err := s.Put(p); err != nil {
			t.Fatal(err)
		}
	}
	objs, rv := s.List(KindPod, "")
	if diff := cmp.Diff([]string{"a/x@4", "a/y@3", "b/x@2"}, names(objs)); diff != "" {
		t.Errorf("List all (-want +got):\n%s", diff)
	}
	if rv != "4" {
		t.Errorf("list resourceVersion = %q, want 4", rv)
	}
	objs, _ = s.List(KindPod, "a")
	if diff := cmp.Diff([]string{"a/x@4", "a/y@3"}, names(objs)); diff != "" {
		t.Errorf("List a (-want +got):\n%s", diff)
	}

	got, ok := s.Get(KindPod, "a", "x")
	if !ok {
		t.Fatal("Get a/x: not found")
	}
	p := got.(*corev1.Pod)
	if p.Kind != "Pod" || p.APIVersion != "v1" || !p.CreationTimestamp.Time.Equal(t0) {
		t.Errorf("Get a/x: typeMeta %v, creationTimestamp %v", p.TypeMeta, p.CreationTimestamp)
	}
	// Modifying the copy must not change the store.
	p.Status.Phase = "Failed"
	again, _ := s.Get(KindPod, "a", "x")
	if again.(*corev1.Pod).Status.Phase != "Running" {
		t.Error("Get returned the stored object, not a copy")
	}
	if _, ok := s.Get(KindPod, "a", "nope"); ok {
		t.Error("Get a/nope: found")
	}
}

func TestPutKeepsIdentityAndSkipsNoOps(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	if err := s.Put(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	first, _ := s.Get(KindNamespace, "", "default")
	uid := first.(*corev1.Namespace).UID
	if uid == "" {
		t.Fatal("Put did not assign a uid")
	}
	now = now.Add(time.Hour)
	// Same content, no uid or timestamp given: nothing changes.
	if err := s.Put(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "77"}}); err != nil {
		t.Fatal(err)
	}
	if rv := s.ResourceVersion(); rv != "2" {
		t.Errorf("no-op Put moved the resourceVersion to %s", rv)
	}
	if err := s.Put(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Status: corev1.NamespaceStatus{Phase: "Active"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(KindNamespace, "", "default")
	ns := got.(*corev1.Namespace)
	if ns.UID != uid || !ns.CreationTimestamp.Time.Equal(t0) || ns.ResourceVersion != "3" {
		t.Errorf("after update: uid %s, created %v, rv %s; want %s, %v, 3", ns.UID, ns.CreationTimestamp, ns.ResourceVersion, uid, t0)
	}
}

func TestPutRejectsBadObjects(t *testing.T) {
	s := New(nil)
	tests := []struct {
		name string
		obj  runtime.Object
	}{
		{"nil", nil},
		{"unsupported type", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "s"}}},
		{"no name", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a"}}},
		{"pod without namespace", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}},
		{"node with namespace", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(tt.obj); err == nil {
				t.Errorf("Put(%s) succeeded", tt.name)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	s := New(nil)
	if err := s.Put(pod("a", "x", "Running")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(KindPod, "a", "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(KindPod, "a", "x"); ok {
		t.Error("deleted pod still there")
	}
	if err := s.Delete(KindPod, "a", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
}

type seen struct {
	Type watch.EventType
	Name string
	RV   string
}

func recv(t *testing.T, ch <-chan watch.Event, n int) []seen {
	t.Helper()
	var out []seen
	for range n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %v", out)
			}
			_, m, _ := kindOf(e.Object)
			out = append(out, seen{e.Type, m.Namespace + "/" + m.Name, m.ResourceVersion})
		default:
			t.Fatalf("no event after %v", out)
		}
	}
	return out
}

func TestWatch(t *testing.T) {
	s := New(nil)
	ctx := t.Context()
	mustPut := func(o runtime.Object) {
		t.Helper()
		if err := s.Put(o); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(pod("a", "x", "Pending")) // rv 2
	mustPut(pod("b", "y", "Pending")) // rv 3

	all, err := s.Watch(ctx, KindPod, "", "0")
	if err != nil {
		t.Fatal(err)
	}
	onlyA, err := s.Watch(ctx, KindPod, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	fromRV, err := s.Watch(ctx, KindPod, "", "2")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := s.Watch(ctx, KindNode, "", "0")
	if err != nil {
		t.Fatal(err)
	}

	mustPut(pod("a", "x", "Running"))                                               // rv 4
	mustPut(pod("a", "x", "Running"))                                               // no-op
	mustPut(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "n1-uid"}}) // rv 5
	if err := s.Delete(KindPod, "b", "y"); err != nil {                             // rv 6
		t.Fatal(err)
	}

	if diff := cmp.Diff([]seen{
		{watch.Added, "a/x", "2"}, {watch.Added, "b/y", "3"},
		{watch.Modified, "a/x", "4"}, {watch.Deleted, "b/y", "6"},
	}, recv(t, all, 4)); diff != "" {
		t.Errorf("watch all from 0 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]seen{{watch.Added, "a/x", "2"}, {watch.Modified, "a/x", "4"}}, recv(t, onlyA, 2)); diff != "" {
		t.Errorf("watch a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]seen{
		{watch.Added, "b/y", "3"}, {watch.Modified, "a/x", "4"}, {watch.Deleted, "b/y", "6"},
	}, recv(t, fromRV, 3)); diff != "" {
		t.Errorf("watch from rv 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]seen{{watch.Added, "/n1", "5"}}, recv(t, nodes, 1)); diff != "" {
		t.Errorf("watch nodes (-want +got):\n%s", diff)
	}
	for name, ch := range map[string]<-chan watch.Event{"all": all, "a": onlyA, "fromRV": fromRV, "nodes": nodes} {
		select {
		case e := <-ch:
			t.Errorf("watch %s: unexpected event %v", name, e.Type)
		default:
		}
	}
}

func TestWatchClosesWithContext(t *testing.T) {
	s := New(nil)
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Watch(ctx, KindPod, "", "0")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Error("got an event after cancel, want a closed channel")
	}
	// Writes after the watcher left must not block or panic.
	if err := s.Put(pod("a", "x", "Running")); err != nil {
		t.Fatal(err)
	}
}

func TestSlowWatcherIsDropped(t *testing.T) {
	s := New(nil)
	ch, err := s.Watch(t.Context(), KindPod, "", "0")
	if err != nil {
		t.Fatal(err)
	}
	for i := range watchBuffer + 5 {
		if err := s.Put(pod("a", fmt.Sprintf("p%03d", i), "Running")); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range ch {
		n++
	}
	if n != watchBuffer {
		t.Errorf("slow watcher got %d events before its channel closed, want %d", n, watchBuffer)
	}
}

func TestWatchResourceVersionErrors(t *testing.T) {
	s := New(nil)
	for i := range historySize + 10 {
		if err := s.Put(pod("a", fmt.Sprintf("p%04d", i), "Running")); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Watch(t.Context(), KindPod, "", "5")
	var expired *ExpiredError
	if !errors.As(err, &expired) {
		t.Fatalf("watch from rv 5: err = %v, want *ExpiredError", err)
	}
	if want := "too old resource version: 5 (12)"; expired.Error() != want {
		t.Errorf("expired message = %q, want %q", expired.Error(), want)
	}
	// The oldest kept change is rv 12; resuming from 11 misses nothing.
	ch, err := s.Watch(t.Context(), KindPod, "", "11")
	if err != nil {
		t.Fatalf("watch from rv 11: %v", err)
	}
	if got := len(ch); got != historySize {
		t.Errorf("watch from rv 11 replayed %d changes, want %d", got, historySize)
	}
	var bad *BadResourceVersionError
	if _, err := s.Watch(t.Context(), KindPod, "", "abc"); !errors.As(err, &bad) {
		t.Errorf("watch from rv abc: err = %v, want *BadResourceVersionError", err)
	}
	if _, err := s.Watch(t.Context(), "Service", "", ""); err == nil {
		t.Error("watch of an unknown kind succeeded")
	}
}
