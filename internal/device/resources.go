package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults for the resources section, sized for a 1 GB board: what the OS,
// containerd and the agent keep (~100 MB resident together), one pod's
// process budget, and kubelet's own eviction signals and syntax.
const (
	DefaultSystemReservedCPU    = "100m"
	DefaultSystemReservedMemory = "128Mi"
	DefaultPodPidsLimit         = 1024
)

// Eviction signals podboot observes: kubelet's names (pkg/kubelet/eviction/api).
const (
	SignalMemoryAvailable = "memory.available"
	SignalNodeFsAvailable = "nodefs.available"
)

// DefaultEvictionHard is evictionHard when the file has none. kubelet's
// defaults are 100Mi and 10%; 64Mi is a smaller share of a 1 GB board.
func DefaultEvictionHard() map[string]Amount {
	return map[string]Amount{SignalMemoryAvailable: "64Mi", SignalNodeFsAvailable: "10%"}
}

// Resources is device.yaml's resources section: kubelet's systemReserved,
// podPidsLimit and evictionHard, with the same names and syntax.
type Resources struct {
	// SystemReserved is kept out of the pods' allocatable (cpu, memory,
	// ephemeral-storage, pid). A missing cpu or memory takes its default;
	// "0" reserves none.
	SystemReserved map[string]Amount `json:"systemReserved,omitempty"`
	// PodPidsLimit is pids.max of every pod cgroup; -1 is unlimited.
	PodPidsLimit *int64 `json:"podPidsLimit,omitempty"`
	// EvictionHard maps a signal to a quantity or a percentage of the
	// signal's capacity. As in kubelet, a map given in the file replaces the
	// defaults whole, and "0%" or "100%" turns a signal off.
	EvictionHard map[string]Amount `json:"evictionHard,omitempty"`
}

// Amount is a quantity ("128Mi", "100m", 2) or, for evictionHard, a
// percentage ("10%"), kept as written; YAML numbers are accepted too.
type Amount string

// UnmarshalJSON accepts a string or a bare number.
func (a *Amount) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = Amount(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a quantity, got %s", b)
	}
	*a = Amount(n.String())
	return nil
}

// ThresholdValue is either a Quantity or a Percentage (0.1 for "10%") of
// the signal's capacity, as kubelet's evictionapi.ThresholdValue.
type ThresholdValue struct {
	Quantity   *resource.Quantity
	Percentage float32
}

// Threshold is one hard eviction threshold: the signal is met when its
// available amount is less than the value (kubelet's OpLessThan).
type Threshold struct {
	Signal string
	Value  ThresholdValue
}

var supportedSystemReserved = []string{"cpu", "ephemeral-storage", "memory", "pid"}
var supportedSignals = []string{SignalMemoryAvailable, SignalNodeFsAvailable}

func (r Resources) withDefaults() Resources {
	sr := make(map[string]Amount, len(r.SystemReserved)+2)
	sr["cpu"] = DefaultSystemReservedCPU
	sr["memory"] = DefaultSystemReservedMemory
	for k, v := range r.SystemReserved {
		sr[k] = v
	}
	r.SystemReserved = sr
	if r.PodPidsLimit == nil {
		n := int64(DefaultPodPidsLimit)
		r.PodPidsLimit = &n
	}
	if r.EvictionHard == nil {
		r.EvictionHard = DefaultEvictionHard()
	}
	return r
}

func (r Resources) validate() error {
	for _, name := range sortedKeys(r.SystemReserved) {
		v := r.SystemReserved[name]
		if !slices.Contains(supportedSystemReserved, name) {
			return fmt.Errorf("resources.systemReserved[%s]: Unsupported value: %q: supported values: %s", name, name, quoted(supportedSystemReserved))
		}
		q, err := resource.ParseQuantity(string(v))
		if err != nil {
			return fmt.Errorf("resources.systemReserved[%s]: Invalid value: %q: %v", name, v, err)
		}
		if q.Sign() < 0 {
			return fmt.Errorf("resources.systemReserved[%s]: Invalid value: %q: must be greater than or equal to 0", name, v)
		}
	}
	if p := r.PodPidsLimit; p != nil && (*p < -1 || *p == 0) {
		return fmt.Errorf("resources.podPidsLimit: Invalid value: %d: want a positive number of pids, or -1 for unlimited", *p)
	}
	for _, signal := range sortedKeys(r.EvictionHard) {
		v := r.EvictionHard[signal]
		if !slices.Contains(supportedSignals, signal) {
			return fmt.Errorf("resources.evictionHard[%s]: Unsupported value: %q: supported values: %s", signal, signal, quoted(supportedSignals))
		}
		if _, err := parseThreshold(signal, string(v)); err != nil {
			return fmt.Errorf("resources.evictionHard[%s]: Invalid value: %q: %v", signal, v, err)
		}
	}
	return nil
}

// parseThreshold follows kubelet's parseThresholdStatement
// (pkg/kubelet/eviction/helpers.go): nil means the threshold is off.
func parseThreshold(signal, val string) (*Threshold, error) {
	if strings.HasSuffix(val, "%") {
		if val == "0%" || val == "100%" {
			return nil, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 32)
		if err != nil {
			return nil, fmt.Errorf("not a percentage")
		}
		p := float32(f) / 100
		if p < 0 {
			return nil, fmt.Errorf("eviction percentage threshold %s must be >= 0%%", signal)
		}
		if p > 1 {
			return nil, fmt.Errorf("eviction percentage threshold %s must be <= 100%%", signal)
		}
		return &Threshold{Signal: signal, Value: ThresholdValue{Percentage: p}}, nil
	}
	q, err := resource.ParseQuantity(val)
	if err != nil {
		return nil, err
	}
	if q.Sign() <= 0 {
		return nil, fmt.Errorf("eviction threshold %s must be positive", signal)
	}
	return &Threshold{Signal: signal, Value: ThresholdValue{Quantity: &q}}, nil
}

// SystemReservedList is systemReserved as a ResourceList (cpu, memory, and
// whatever else the file names).
func (r Resources) SystemReservedList() corev1.ResourceList {
	out := make(corev1.ResourceList, len(r.SystemReserved))
	for name, v := range r.SystemReserved {
		q, err := resource.ParseQuantity(string(v))
		if err != nil {
			continue // validate refused it already
		}
		out[corev1.ResourceName(name)] = q
	}
	return out
}

// PidsLimit is pids.max per pod, -1 for unlimited.
func (r Resources) PidsLimit() int64 {
	if r.PodPidsLimit == nil {
		return DefaultPodPidsLimit
	}
	return *r.PodPidsLimit
}

// EvictionThresholds are the hard thresholds in force, sorted by signal;
// signals turned off ("0%", "100%") are left out.
func (r Resources) EvictionThresholds() []Threshold {
	var out []Threshold
	for _, signal := range sortedKeys(r.EvictionHard) {
		t, err := parseThreshold(signal, string(r.EvictionHard[signal]))
		if err != nil || t == nil {
			continue
		}
		out = append(out, *t)
	}
	return out
}

func sortedKeys(m map[string]Amount) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func quoted(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// Of is the threshold in bytes (or units) for a signal of the given
// capacity: the quantity itself, or the percentage of capacity, as kubelet's
// evictionapi.GetThresholdQuantity.
func (v ThresholdValue) Of(capacity resource.Quantity) resource.Quantity {
	if v.Quantity != nil {
		return v.Quantity.DeepCopy()
	}
	return *resource.NewQuantity(int64(float64(v.Percentage)*float64(capacity.Value())), resource.BinarySI)
}
