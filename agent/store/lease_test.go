package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

func nodeLease(renew time.Time) *coordinationv1.Lease {
	holder, duration := "board", int32(40)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-node-lease", Name: "board"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: &holder, LeaseDurationSeconds: &duration,
			RenewTime: &metav1.MicroTime{Time: renew},
		},
	}
}

// TestLease: the store holds coordination.k8s.io/v1 Leases, namespaced,
// typed with their group, and a renewal is a MODIFIED event.
func TestLease(t *testing.T) {
	now := t0
	s := New(fixedClock(&now))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := s.Watch(ctx, KindLease, "kube-node-lease", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(nodeLease(t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(nodeLease(t0.Add(10 * time.Second))); err != nil {
		t.Fatal(err)
	}
	obj, ok := s.Get(KindLease, "kube-node-lease", "board")
	if !ok {
		t.Fatal("Get lease: not found")
	}
	l := obj.(*coordinationv1.Lease)
	want := schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}
	if got := l.GroupVersionKind(); got != want {
		t.Errorf("lease kind = %v, want %v", got, want)
	}
	if got := l.Spec.RenewTime.Time; !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("renewTime = %v, want the second Put's", got)
	}
	var types []watch.EventType
	for range 2 {
		types = append(types, (<-ch).Type)
	}
	if diff := cmp.Diff([]watch.EventType{watch.Added, watch.Modified}, types); diff != "" {
		t.Errorf("watch events (-want +got):\n%s", diff)
	}
	if !Namespaced(KindLease) || !Known(KindLease) {
		t.Errorf("Namespaced(Lease) = %t, Known(Lease) = %t; want both", Namespaced(KindLease), Known(KindLease))
	}
	if err := s.Put(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "board"}}); err == nil {
		t.Error("Put of a lease without a namespace succeeded")
	}
}
