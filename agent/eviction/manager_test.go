package eviction

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// node is a fake of everything the Manager observes and acts on.
type node struct {
	mu                  sync.Mutex
	memAvail, memTotal  int64
	diskAvail, diskSize int64
	pods                []*corev1.Pod
	usage               map[types.UID]map[string]int64 // pod -> container -> working set
	refuse              map[types.UID]bool
	evicted             []string // "name: message"
	events              []string
	conditions          [][]string // every published set, "Type=Status Reason"
}

func (n *node) Memory() (int64, int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.memAvail, n.memTotal, nil
}

func (n *node) Disk() (int64, int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.diskAvail, n.diskSize, nil
}

func (n *node) ContainerStats(ctx context.Context) ([]runtime.ContainerStats, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []runtime.ContainerStats
	for _, p := range n.pods {
		for c, ws := range n.usage[p.UID] {
			out = append(out, runtime.ContainerStats{Pod: runtime.PodRef{UID: p.UID, Namespace: p.Namespace, Name: p.Name}, Name: c, MemoryWorkingSetBytes: uint64(ws)})
		}
	}
	return out, nil
}

func (n *node) ActivePods() []*corev1.Pod {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*corev1.Pod(nil), n.pods...)
}

func (n *node) Evict(uid types.UID, reason, message string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refuse[uid] {
		return errors.New("refused")
	}
	for i, p := range n.pods {
		if p.UID == uid {
			n.pods = append(n.pods[:i], n.pods[i+1:]...)
			n.evicted = append(n.evicted, p.Name+" "+reason+": "+message)
			return nil
		}
	}
	return fmt.Errorf("no pod %s", uid)
}

func (n *node) Eventf(obj k8sruntime.Object, eventtype, reason, messageFmt string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, fmt.Sprintf("%s/%s %s %s: %s", obj.(*corev1.Node).Kind, obj.(*corev1.Node).Name, eventtype, reason, fmt.Sprintf(messageFmt, args...)))
}

func (n *node) setConditions(cs []corev1.NodeCondition) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var s []string
	for _, c := range cs {
		s = append(s, fmt.Sprintf("%s=%s %s %q", c.Type, c.Status, c.Reason, c.Message))
	}
	n.conditions = append(n.conditions, s)
}

// take returns and clears what was evicted, recorded and published.
func (n *node) take() (evicted, events []string, conditions [][]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	evicted, events, conditions = n.evicted, n.events, n.conditions
	n.evicted, n.events, n.conditions = nil, nil, nil
	return
}

func testPod(uid types.UID, name, memRequest, memLimit string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	if memRequest != "" {
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memRequest)}
	}
	if memLimit != "" {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memLimit)}
	}
	return p
}

func newNode() *node {
	critical := testPod("u0", "critical", "", "")
	critical.Spec.PriorityClassName = "system-node-critical"
	return &node{
		memAvail: 512 * mi, memTotal: 1024 * mi, diskAvail: 4 << 30, diskSize: 8 << 30,
		pods: []*corev1.Pod{
			testPod("u1", "guaranteed", "256Mi", "256Mi"),
			critical,
			testPod("u2", "burstable", "128Mi", ""),
			testPod("u3", "besteffort", "", ""),
		},
		usage: map[types.UID]map[string]int64{
			"u0": {"c": 400 * mi}, // the most, above its request, yet never evicted
			"u1": {"c": 200 * mi},
			"u2": {"c": 150 * mi},
			"u3": {"c": 50 * mi},
		},
	}
}

func start(t *testing.T, n *node) {
	m, err := NewManager(Config{
		Thresholds: defaults, Memory: n, Disk: n, Stats: n, Pods: n, NodeName: "board", Events: n, Conditions: n.setConditions,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	synctest.Wait()
}

var (
	memoryFalse = []string{`MemoryPressure=False KubeletHasSufficientMemory "kubelet has sufficient memory available"`, `DiskPressure=False KubeletHasNoDiskPressure "kubelet has no disk pressure"`}
	memoryTrue  = []string{`MemoryPressure=True KubeletHasInsufficientMemory "kubelet has insufficient memory available"`, `DiskPressure=False KubeletHasNoDiskPressure "kubelet has no disk pressure"`}
	diskTrue    = []string{`MemoryPressure=False KubeletHasSufficientMemory "kubelet has sufficient memory available"`, `DiskPressure=True KubeletHasDiskPressure "kubelet has disk pressure"`}
)

// TestMemoryPressure: one pod evicted per 10 s round in rank order
// (BestEffort, then Burstable above its request, then the rest), never
// the system-node-critical one; MemoryPressure turns True at once and
// False only 5 minutes after the threshold was last met, each change with
// kubelet's node event.
func TestMemoryPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode()
		start(t, n)
		_, events, conds := n.take()
		if !cmp.Equal(conds, [][]string{memoryFalse}) {
			t.Errorf("healthy node: conditions %q, want the False ones once", conds)
		}
		if want := []string{"/board Normal NodeHasSufficientMemory: Node board status is now: NodeHasSufficientMemory", "/board Normal NodeHasNoDiskPressure: Node board status is now: NodeHasNoDiskPressure"}; !cmp.Equal(events, want) {
			t.Errorf("healthy node at start: events %q, want %q", events, want)
		}

		n.mu.Lock()
		n.memAvail = 50 * mi
		n.mu.Unlock()
		const low = "The node was low on resource: memory. Threshold quantity: 64Mi, available: 50Mi. "
		rounds := []struct {
			evicted    []string
			events     []string
			conditions [][]string
		}{
			{
				evicted:    []string{"besteffort Evicted: " + low + "Container c was using 50Mi, request is 0, has larger consumption of memory. "},
				events:     []string{"/board Normal NodeHasInsufficientMemory: Node board status is now: NodeHasInsufficientMemory"},
				conditions: [][]string{memoryTrue},
			},
			{evicted: []string{"burstable Evicted: " + low + "Container c was using 150Mi, request is 128Mi, has larger consumption of memory. "}},
			{evicted: []string{"guaranteed Evicted: " + low}},
			{}, // only the critical pod is left
		}
		for i, want := range rounds {
			advance(10 * time.Second)
			evicted, events, conds := n.take()
			if diff := cmp.Diff(want.evicted, evicted); diff != "" {
				t.Errorf("round %d evictions (-want +got):\n%s", i+1, diff)
			}
			if diff := cmp.Diff(want.events, events); diff != "" {
				t.Errorf("round %d events (-want +got):\n%s", i+1, diff)
			}
			if diff := cmp.Diff(want.conditions, conds); diff != "" {
				t.Errorf("round %d conditions (-want +got):\n%s", i+1, diff)
			}
		}

		// Relieved: True for the transition period, then False.
		n.mu.Lock()
		n.memAvail = 512 * mi
		n.mu.Unlock()
		advance(4*time.Minute + 40*time.Second)
		if _, events, conds := n.take(); len(events)+len(conds) != 0 {
			t.Errorf("within the transition period: events %q conditions %q, want none", events, conds)
		}
		advance(30 * time.Second)
		_, events, conds = n.take()
		if want := []string{"/board Normal NodeHasSufficientMemory: Node board status is now: NodeHasSufficientMemory"}; !cmp.Equal(events, want) {
			t.Errorf("after the transition period: events %q, want %q", events, want)
		}
		if !cmp.Equal(conds, [][]string{memoryFalse}) {
			t.Errorf("after the transition period: conditions %q, want the False ones", conds)
		}
	})
}

// TestDiskPressure: nodefs below 10% sets DiskPressure and evicts with
// ephemeral-storage in the message.
func TestDiskPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode()
		n.diskAvail = 700 * mi
		start(t, n)
		evicted, events, conds := n.take()
		if want := []string{"besteffort Evicted: The node was low on resource: ephemeral-storage. Threshold quantity: 858993472, available: 700Mi. "}; !cmp.Equal(evicted, want) {
			t.Errorf("evicted %q, want %q", evicted, want)
		}
		if want := []string{"/board Normal NodeHasSufficientMemory: Node board status is now: NodeHasSufficientMemory", "/board Normal NodeHasDiskPressure: Node board status is now: NodeHasDiskPressure"}; !cmp.Equal(events, want) {
			t.Errorf("events %q, want %q", events, want)
		}
		if !cmp.Equal(conds, [][]string{diskTrue}) {
			t.Errorf("conditions %q, want DiskPressure True", conds)
		}
	})
}

// TestEvictionRefused: a pod the manager cannot evict is passed over for
// the next in rank, still one per round.
func TestEvictionRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode()
		n.memAvail = mi
		n.refuse = map[types.UID]bool{"u3": true}
		start(t, n)
		evicted, _, _ := n.take()
		if len(evicted) != 1 || evicted[0][:len("burstable ")] != "burstable " {
			t.Errorf("evicted %q, want burstable only", evicted)
		}
	})
}

func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
