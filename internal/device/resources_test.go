package device

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// thresholdText prints a threshold the way it was configured, for diffs.
func thresholdText(ts []Threshold) []string {
	var out []string
	for _, t := range ts {
		v := ""
		if t.Value.Quantity != nil {
			v = t.Value.Quantity.String()
		} else {
			v = resource.NewMilliQuantity(int64(t.Value.Percentage*1000+0.5), resource.DecimalSI).String()
		}
		out = append(out, t.Signal+"<"+v)
	}
	return out
}

func TestLoadResources(t *testing.T) {
	tests := []struct {
		name         string
		content      string // "" = no file
		wantReserved corev1.ResourceList
		wantPids     int64
		wantEviction []string // signal<quantity, or signal<fraction of capacity
		wantErr      string
	}{
		{
			name:         "defaults",
			wantReserved: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")},
			wantPids:     1024,
			wantEviction: []string{"memory.available<64Mi", "nodefs.available<100m"},
		},
		{
			name:         "given values, numbers accepted, missing reserved key defaulted",
			content:      "resources:\n  systemReserved: {cpu: 1, pid: 100}\n  podPidsLimit: -1\n  evictionHard: {memory.available: 100Mi, nodefs.available: \"5.5%\"}\n",
			wantReserved: corev1.ResourceList{"cpu": resource.MustParse("1"), "memory": resource.MustParse("128Mi"), "pid": resource.MustParse("100")},
			wantPids:     -1,
			wantEviction: []string{"memory.available<100Mi", "nodefs.available<55m"},
		},
		{
			name:         "evictionHard replaces the defaults whole, as kubelet's does",
			content:      "resources:\n  evictionHard: {memory.available: 32Mi}\n",
			wantReserved: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")},
			wantPids:     1024,
			wantEviction: []string{"memory.available<32Mi"},
		},
		{
			name:         "0% and 100% turn a signal off",
			content:      "resources:\n  systemReserved: {memory: \"0\"}\n  evictionHard: {memory.available: \"100%\", nodefs.available: \"0%\"}\n",
			wantReserved: corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("0")},
			wantPids:     1024,
		},
		{name: "unknown field", content: "resources:\n  kubeReserved: {cpu: 1}\n", wantErr: `unknown field "kubeReserved"`},
		{name: "bad reserved quantity", content: "resources:\n  systemReserved: {memory: lots}\n", wantErr: `resources.systemReserved[memory]: Invalid value: "lots"`},
		{name: "negative reserved", content: "resources:\n  systemReserved: {cpu: -1}\n", wantErr: `resources.systemReserved[cpu]: Invalid value: "-1": must be greater than or equal to 0`},
		{name: "unsupported reserved resource", content: "resources:\n  systemReserved: {gpu: 1}\n", wantErr: `resources.systemReserved[gpu]: Unsupported value: "gpu"`},
		{name: "zero pids", content: "resources:\n  podPidsLimit: 0\n", wantErr: `resources.podPidsLimit: Invalid value: 0`},
		{name: "pids below -1", content: "resources:\n  podPidsLimit: -5\n", wantErr: `resources.podPidsLimit: Invalid value: -5`},
		{name: "unsupported signal", content: "resources:\n  evictionHard: {imagefs.available: 10%}\n", wantErr: `resources.evictionHard[imagefs.available]: Unsupported value: "imagefs.available": supported values: "memory.available", "nodefs.available"`},
		{name: "percentage over 100", content: "resources:\n  evictionHard: {nodefs.available: 120%}\n", wantErr: `resources.evictionHard[nodefs.available]: Invalid value: "120%": eviction percentage threshold nodefs.available must be <= 100%`},
		{name: "negative percentage", content: "resources:\n  evictionHard: {nodefs.available: -1%}\n", wantErr: `must be >= 0%`},
		{name: "not a percentage", content: "resources:\n  evictionHard: {nodefs.available: ten%}\n", wantErr: `resources.evictionHard[nodefs.available]: Invalid value: "ten%": not a percentage`},
		{name: "zero quantity", content: "resources:\n  evictionHard: {memory.available: \"0\"}\n", wantErr: `eviction threshold memory.available must be positive`},
		{name: "bad quantity", content: "resources:\n  evictionHard: {memory.available: 64MB}\n", wantErr: `resources.evictionHard[memory.available]: Invalid value: "64MB"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "device.yaml")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := d.Resources
			if diff := cmp.Diff(tt.wantReserved, r.SystemReservedList(), cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("SystemReservedList (-want +got):\n%s", diff)
			}
			if got := r.PidsLimit(); got != tt.wantPids {
				t.Errorf("PidsLimit = %d, want %d", got, tt.wantPids)
			}
			if diff := cmp.Diff(tt.wantEviction, thresholdText(r.EvictionThresholds())); diff != "" {
				t.Errorf("EvictionThresholds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThresholdValueOf(t *testing.T) {
	q := resource.MustParse("64Mi")
	tests := []struct {
		name     string
		value    ThresholdValue
		capacity resource.Quantity
		want     string
	}{
		{"quantity ignores capacity", ThresholdValue{Quantity: &q}, resource.MustParse("1Gi"), "64Mi"},
		// float32(0.1) is a hair above 0.1, as in kubelet.
		{"10% of 1Gi", ThresholdValue{Percentage: 0.1}, resource.MustParse("1Gi"), "107374184"},
		{"50% of 8Gi", ThresholdValue{Percentage: 0.5}, resource.MustParse("8Gi"), "4Gi"},
		{"percentage of nothing", ThresholdValue{Percentage: 0.1}, resource.Quantity{}, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.value.Of(tt.capacity)
			if got.String() != tt.want {
				t.Errorf("Of = %s, want %s", got.String(), tt.want)
			}
		})
	}
}
