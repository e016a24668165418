package metrics

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GroupVersion is the metrics API's group and version.
const GroupVersion = "metrics.k8s.io/v1beta1"

// NodeMetrics is k8s.io/metrics/pkg/apis/metrics/v1beta1.NodeMetrics,
// field for field (that module is not a dependency).
type NodeMetrics struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Timestamp is the end of the window the usage was measured over.
	Timestamp metav1.Time     `json:"timestamp"`
	Window    metav1.Duration `json:"window"`
	// Usage holds "cpu" (cores, a rate over Window) and "memory" (bytes).
	Usage corev1.ResourceList `json:"usage"`
}

// NodeMetricsList is v1beta1.NodeMetricsList.
type NodeMetricsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodeMetrics `json:"items"`
}

// PodMetrics is v1beta1.PodMetrics.
type PodMetrics struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Timestamp         metav1.Time        `json:"timestamp"`
	Window            metav1.Duration    `json:"window"`
	Containers        []ContainerMetrics `json:"containers"`
}

// PodMetricsList is v1beta1.PodMetricsList.
type PodMetricsList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PodMetrics `json:"items"`
}

// ContainerMetrics is v1beta1.ContainerMetrics.
type ContainerMetrics struct {
	Name  string              `json:"name"`
	Usage corev1.ResourceList `json:"usage"`
}
