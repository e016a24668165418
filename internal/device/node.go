package device

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Well-known node labels podboot sets itself (kubelet's
// kubeletapis well-known labels); device.yaml cannot override them.
const (
	LabelArch     = "kubernetes.io/arch"
	LabelOS       = "kubernetes.io/os"
	LabelHostname = "kubernetes.io/hostname"
)

// Node is device.yaml's node section: what the board says of itself as a
// Kubernetes node. Labels are kubelet's --node-labels: pods select the
// board with nodeSelector and node affinity on them.
type Node struct {
	Labels map[string]string `json:"labels,omitempty"`
}

func (n Node) validate() error {
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("node.labels: Invalid value: %q: %s", k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(n.Labels[k]); len(errs) > 0 {
			return fmt.Errorf("node.labels[%s]: Invalid value: %q: %s", k, n.Labels[k], strings.Join(errs, "; "))
		}
		switch k {
		case LabelArch, LabelOS, LabelHostname:
			return fmt.Errorf("node.labels[%s]: Forbidden: set by the board itself", k)
		}
	}
	return nil
}
