package podagent

import (
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/store"
)

// storePublisher puts the manager's pods into the store the API serves.
type storePublisher struct {
	st  *store.Store
	log *slog.Logger
}

func (p storePublisher) PublishPod(pod *corev1.Pod) {
	pod = pod.DeepCopy()
	pod.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	// A terminating pod never hides the pod that replaces it under the same
	// name (a changed manifest: the new UID is already published).
	if obj, ok := p.st.Get("Pod", pod.Namespace, pod.Name); ok && obj.(*corev1.Pod).UID != pod.UID && pod.DeletionTimestamp != nil {
		return
	}
	if err := p.st.Put(pod); err != nil {
		p.log.Error("publish pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// RemovePod removes the pod unless the name now belongs to a newer pod
// (a changed manifest replaces a pod under the same name).
func (p storePublisher) RemovePod(namespace, name string, uid types.UID) {
	if obj, ok := p.st.Get("Pod", namespace, name); ok && obj.(*corev1.Pod).UID != uid {
		return
	}
	if err := p.st.Delete("Pod", namespace, name); err != nil {
		p.log.Debug("remove pod", "pod", namespace+"/"+name, "err", err)
	}
}
