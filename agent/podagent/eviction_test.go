package podagent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/store"
)

// TestSetNodeConditions: the eviction loop's conditions replace the node's
// of the same type; lastTransitionTime moves only when the status changes,
// lastHeartbeatTime always; other conditions are left alone.
func TestSetNodeConditions(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	boot := metav1.NewTime(t0)
	st := store.New(func() time.Time { return t0 })
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "board"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		nodeCondition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", boot),
		nodeCondition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", boot),
		nodeCondition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", boot),
	}}}
	if err := st.Put(node); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Minute)
	err := setNodeConditions(st, "board", []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, Reason: "KubeletHasInsufficientMemory", Message: "kubelet has insufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
	}, later)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := st.Get(store.KindNode, "", "board")
	now := metav1.NewTime(later)
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, Reason: "KubeletHasInsufficientMemory", Message: "kubelet has insufficient memory available", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure", LastHeartbeatTime: now, LastTransitionTime: boot},
		nodeCondition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", boot),
	}
	if diff := cmp.Diff(want, obj.(*corev1.Node).Status.Conditions); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if err := setNodeConditions(st, "absent", nil, later); err != nil {
		t.Errorf("no node yet: %v, want nothing done", err)
	}
}
