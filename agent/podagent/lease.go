package podagent

import (
	"context"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

// The node lease as kubelet keeps it: NodeLeaseDurationSeconds' default,
// renewed at nodeLeaseRenewIntervalFraction (0.25) of it
// (pkg/kubelet/kubelet.go).
const (
	nodeLeaseDurationSeconds = 40
	nodeLeaseRenewInterval   = nodeLeaseDurationSeconds * time.Second / 4
)

// keepNodeLease publishes the node's Lease in kube-node-lease and renews
// it every 10 s until ctx ends, as kubelet's lease controller
// (k8s.io/component-helpers/apimachinery/lease) does: holder the node,
// owned by the Node object. Nothing on a standalone board reads it for
// liveness; it is there because kubectl describe node looks it up, and a
// renewTime that moves says the agent is alive.
func keepNodeLease(ctx context.Context, st *store.Store, node *corev1.Node, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	holder := node.Name
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: corev1.NamespaceNodeLease,
			Name:      node.Name,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       &holder,
			LeaseDurationSeconds: new(int32(nodeLeaseDurationSeconds)),
		},
	}
	renew := func() {
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		if err := st.Put(lease); err != nil {
			// Only an invalid object fails; the next round tries again.
			log.Error("renew node lease", "namespace", lease.Namespace, "name", lease.Name, "err", err)
		}
	}
	renew()
	tick := time.NewTicker(nodeLeaseRenewInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			renew()
		}
	}
}
