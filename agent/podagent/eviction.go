package podagent

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/procfs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/eviction"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// runEviction runs kubelet's node-pressure eviction until ctx ends:
// memory.available from /proc/meminfo, nodefs.available from the flash,
// device.yaml's evictionHard thresholds, the pods' working sets from the
// runtime; pods are evicted through the pod manager and the node's
// pressure conditions are kept in the store. A failure to start leaves
// the board without eviction rather than without pods.
func runEviction(ctx context.Context, nodeName, flashDir string, res device.Resources, st *store.Store, rec *store.Recorder, stats runtime.StatsReader, pods eviction.Evictor, log *slog.Logger) error {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		log.Error("eviction off", "err", err)
		return nil
	}
	m, err := eviction.NewManager(eviction.Config{
		Thresholds: res.EvictionThresholds(),
		Memory:     eviction.ProcMemory{FS: fs},
		Disk:       eviction.Statfs{Dir: flashDir},
		Stats:      stats,
		Pods:       pods,
		NodeName:   nodeName,
		Events:     rec,
		Conditions: func(conds []corev1.NodeCondition) {
			if err := setNodeConditions(st, nodeName, conds, time.Now()); err != nil {
				log.Warn("update node conditions", "err", err)
			}
		},
		Log: log,
	})
	if err != nil {
		log.Error("eviction off", "err", err)
		return nil
	}
	return m.Run(ctx)
}

// setNodeConditions replaces the node's conditions of the same types:
// lastHeartbeatTime is now, lastTransitionTime too when the status changed.
func setNodeConditions(st *store.Store, nodeName string, conds []corev1.NodeCondition, now time.Time) error {
	obj, ok := st.Get(store.KindNode, "", nodeName)
	if !ok {
		return nil // not published yet: buildNode's conditions come first
	}
	node := obj.(*corev1.Node).DeepCopy()
	t := metav1.NewTime(now.Truncate(time.Second))
	for _, c := range conds {
		c.LastHeartbeatTime, c.LastTransitionTime = t, t
		found := false
		for i, old := range node.Status.Conditions {
			if old.Type != c.Type {
				continue
			}
			found = true
			if old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			node.Status.Conditions[i] = c
		}
		if !found {
			node.Status.Conditions = append(node.Status.Conditions, c)
		}
	}
	return st.Put(node)
}
