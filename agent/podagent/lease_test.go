package podagent

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

// TestKeepNodeLease: the node's Lease in kube-node-lease is created at
// once as kubelet's lease controller makes it (holder the node, 40 s,
// owned by the Node) and renewed every 10 s until ctx ends.
func TestKeepNodeLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.New(time.Now)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "board", UID: "node-uid"}}
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- keepNodeLease(ctx, st, node, nil) }()

		renewTime := func() time.Time {
			t.Helper()
			obj, ok := st.Get(store.KindLease, "kube-node-lease", "board")
			if !ok {
				t.Fatal("no lease kube-node-lease/board")
			}
			return obj.(*coordinationv1.Lease).Spec.RenewTime.Time
		}
		synctest.Wait()
		obj, ok := st.Get(store.KindLease, "kube-node-lease", "board")
		if !ok {
			t.Fatal("no lease kube-node-lease/board at start")
		}
		got := obj.(*coordinationv1.Lease)
		want := &coordinationv1.Lease{
			TypeMeta: metav1.TypeMeta{Kind: "Lease", APIVersion: "coordination.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{
				Namespace: "kube-node-lease", Name: "board",
				UID: got.UID, ResourceVersion: got.ResourceVersion, CreationTimestamp: got.CreationTimestamp,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "board", UID: "node-uid"}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptrTo("board"),
				LeaseDurationSeconds: ptrTo(int32(40)),
				RenewTime:            &metav1.MicroTime{Time: start},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lease at start (-want +got):\n%s", diff)
		}

		time.Sleep(25 * time.Second)
		synctest.Wait()
		if got, want := renewTime(), start.Add(20*time.Second); !got.Equal(want) {
			t.Errorf("renewTime after 25 s = +%v, want +%v", got.Sub(start), want.Sub(start))
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("keepNodeLease returned %v, want nil at the end of ctx", err)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
