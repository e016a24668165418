package admission

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// board is a node as podagent publishes it: the well-known labels, the
// labels of device.yaml, kubelet's default allocatable.
func board() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "board", Labels: map[string]string{
			"kubernetes.io/arch":     "arm64",
			"kubernetes.io/os":       "linux",
			"kubernetes.io/hostname": "board",
			"disktype":               "ssd",
			"zone":                   "greenhouse-2",
			"cores":                  "4",
		}},
		Status: corev1.NodeStatus{Allocatable: list("1900m", "768Mi", "110")},
	}
}

// selecting is a pod with a nodeSelector.
func selecting(selector map[string]string) *corev1.Pod {
	p := pod("a", "", "")
	p.Spec.NodeSelector = selector
	return p
}

// requiring is a pod whose required node affinity has these terms.
func requiring(terms ...corev1.NodeSelectorTerm) *corev1.Pod {
	p := pod("a", "", "")
	p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}
	return p
}

func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func labelTerm(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: reqs}
}

func fieldTerm(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchFields: reqs}
}

// Cases follow kubelet's predicate admit handler
// (pkg/kubelet/lifecycle/predicate.go) and the scheduler's AdmissionCheck
// (pkg/scheduler/eventhandlers.go) at v1.37.2: the reason is the
// predicate's name, the message PredicateFailureError's
// "Predicate <name> failed: <the plugin's ErrReason>".
func TestAdmitNode(t *testing.T) {
	admit := Decision{Admit: true}
	affinity := Decision{Reason: "NodeAffinity", Message: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"}
	nodeName := Decision{Reason: "NodeName", Message: "Predicate NodeName failed: node(s) didn't match the requested node name"}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		admitted []*corev1.Pod
		want     Decision
	}{
		// nodeSelector: every label must be there with that value.
		{name: "nodeSelector of pod-nginx.yaml on a node with disktype=ssd", pod: selecting(map[string]string{"disktype": "ssd"}), want: admit},
		{name: "nodeSelector with another value", pod: selecting(map[string]string{"disktype": "hdd"}), want: affinity},
		{name: "nodeSelector on a label the node lacks", pod: selecting(map[string]string{"gpu": "true"}), want: affinity},
		{name: "nodeSelector: all labels must match", pod: selecting(map[string]string{"disktype": "ssd", "zone": "greenhouse-1"}), want: affinity},
		{name: "nodeSelector on the well-known arch label", pod: selecting(map[string]string{"kubernetes.io/arch": "arm64"}), want: admit},
		{name: "nodeSelector on another arch", pod: selecting(map[string]string{"kubernetes.io/arch": "amd64"}), want: affinity},
		{name: "nodeSelector on the hostname label", pod: selecting(map[string]string{"kubernetes.io/hostname": "board"}), want: admit},
		{name: "nodeSelector on another host", pod: selecting(map[string]string{"kubernetes.io/hostname": "other"}), want: affinity},
		{name: "empty nodeSelector", pod: selecting(map[string]string{}), want: admit},

		// Required node affinity: terms are ORed, requirements of a term ANDed.
		{name: "In", pod: requiring(labelTerm(expr("disktype", corev1.NodeSelectorOpIn, "nvme", "ssd"))), want: admit},
		{name: "In without the value", pod: requiring(labelTerm(expr("disktype", corev1.NodeSelectorOpIn, "nvme", "hdd"))), want: affinity},
		{name: "NotIn", pod: requiring(labelTerm(expr("kubernetes.io/arch", corev1.NodeSelectorOpNotIn, "amd64"))), want: admit},
		{name: "NotIn with the value", pod: requiring(labelTerm(expr("kubernetes.io/arch", corev1.NodeSelectorOpNotIn, "arm64"))), want: affinity},
		{name: "NotIn on a missing label matches", pod: requiring(labelTerm(expr("gpu", corev1.NodeSelectorOpNotIn, "true"))), want: admit},
		{name: "Exists", pod: requiring(labelTerm(expr("zone", corev1.NodeSelectorOpExists))), want: admit},
		{name: "Exists on a missing label", pod: requiring(labelTerm(expr("gpu", corev1.NodeSelectorOpExists))), want: affinity},
		{name: "DoesNotExist", pod: requiring(labelTerm(expr("gpu", corev1.NodeSelectorOpDoesNotExist))), want: admit},
		{name: "DoesNotExist on a present label", pod: requiring(labelTerm(expr("disktype", corev1.NodeSelectorOpDoesNotExist))), want: affinity},
		{name: "Gt", pod: requiring(labelTerm(expr("cores", corev1.NodeSelectorOpGt, "2"))), want: admit},
		{name: "Gt not greater", pod: requiring(labelTerm(expr("cores", corev1.NodeSelectorOpGt, "4"))), want: affinity},
		{name: "Lt", pod: requiring(labelTerm(expr("cores", corev1.NodeSelectorOpLt, "8"))), want: admit},
		{name: "Gt on a value that is not an integer matches nothing", pod: requiring(labelTerm(expr("cores", corev1.NodeSelectorOpGt, "two"))), want: affinity},
		{
			name: "requirements of a term are ANDed",
			pod:  requiring(labelTerm(expr("disktype", corev1.NodeSelectorOpIn, "ssd"), expr("zone", corev1.NodeSelectorOpIn, "greenhouse-1"))),
			want: affinity,
		},
		{
			name: "terms are ORed",
			pod: requiring(
				labelTerm(expr("zone", corev1.NodeSelectorOpIn, "greenhouse-1")),
				labelTerm(expr("zone", corev1.NodeSelectorOpIn, "greenhouse-2")),
			),
			want: admit,
		},
		{name: "matchFields on the node's name", pod: requiring(fieldTerm(expr("metadata.name", corev1.NodeSelectorOpIn, "board"))), want: admit},
		{name: "matchFields on another node's name", pod: requiring(fieldTerm(expr("metadata.name", corev1.NodeSelectorOpIn, "other"))), want: affinity},
		{name: "matchFields NotIn the node's name", pod: requiring(fieldTerm(expr("metadata.name", corev1.NodeSelectorOpNotIn, "board"))), want: affinity},
		{
			name: "matchExpressions and matchFields of one term are ANDed",
			pod: requiring(corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{expr("disktype", corev1.NodeSelectorOpIn, "ssd")},
				MatchFields:      []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "other")},
			}),
			want: affinity,
		},
		{name: "an empty term matches nothing", pod: requiring(corev1.NodeSelectorTerm{}), want: affinity},
		{name: "no terms match nothing", pod: requiring(), want: affinity},
		{
			name: "nodeSelector and affinity must both match",
			pod: func() *corev1.Pod {
				p := requiring(labelTerm(expr("disktype", corev1.NodeSelectorOpIn, "ssd")))
				p.Spec.NodeSelector = map[string]string{"zone": "greenhouse-1"}
				return p
			}(),
			want: affinity,
		},
		{
			name: "preferred affinity does not refuse",
			pod: func() *corev1.Pod {
				p := pod("a", "", "")
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: labelTerm(expr("gpu", corev1.NodeSelectorOpExists))}},
				}}
				return p
			}(),
			want: admit,
		},

		// NodeName.
		{name: "nodeName of this node", pod: withNodeName(pod("a", "", ""), "board"), want: admit},
		{name: "nodeName of another node", pod: withNodeName(pod("a", "", ""), "other"), want: nodeName},

		// Order: resources, NodeAffinity, NodeName, NodePorts.
		{
			name: "resources are reported before node affinity",
			pod:  withNodeName(withRequests(selecting(map[string]string{"disktype": "hdd"}), "3"), "other"),
			want: Decision{Reason: "OutOfcpu", Message: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 1900"},
		},
		{name: "node affinity is reported before node name", pod: withNodeName(selecting(map[string]string{"disktype": "hdd"}), "other"), want: affinity},
		{
			name:     "node name is reported before host ports",
			pod:      withNodeName(hostPortPod("a", hp("", "TCP", 80)), "other"),
			admitted: []*corev1.Pod{hostPortPod("b", hp("", "TCP", 80))},
			want:     nodeName,
		},

		// The OS checks come first: no preemption can help them.
		{
			name: "a kubernetes.io/os pod label for another OS",
			pod:  withLabels(withRequests(pod("a", "", ""), "3"), map[string]string{"kubernetes.io/os": "windows"}),
			want: Decision{Reason: "PodOSSelectorNodeLabelDoesNotMatch", Message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"},
		},
		{name: "a kubernetes.io/os pod label for linux", pod: withLabels(pod("a", "", ""), map[string]string{"kubernetes.io/os": "linux"}), want: admit},
		{
			name: "spec.os for another OS",
			pod: func() *corev1.Pod {
				p := withNodeName(pod("a", "", ""), "other")
				p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
				return p
			}(),
			want: Decision{Reason: "PodOSNotSupported", Message: "Failed to admit pod as the OS field doesn't match node OS"},
		},
		{
			name: "spec.os linux",
			pod: func() *corev1.Pod {
				p := pod("a", "", "")
				p.Spec.OS = &corev1.PodOS{Name: corev1.Linux}
				return p
			}(),
			want: admit,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Admit(tt.pod, tt.admitted, board())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Admit (-want +got):\n%s", diff)
			}
		})
	}
}

func withNodeName(p *corev1.Pod, name string) *corev1.Pod {
	p.Spec.NodeName = name
	return p
}

func withLabels(p *corev1.Pod, labels map[string]string) *corev1.Pod {
	p.Labels = labels
	return p
}
