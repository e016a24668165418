package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime/fake"
)

// runningWatch signals when a pod is published with every container
// running, and when it is removed.
type runningWatch struct {
	mu      sync.Mutex
	running map[types.UID]chan struct{}
	removed map[types.UID]chan struct{}
}

func (r *runningWatch) expect(uid types.UID) (running, removed chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	running, removed = make(chan struct{}), make(chan struct{})
	r.running[uid], r.removed[uid] = running, removed
	return running, removed
}

func (r *runningWatch) PublishPod(pod *corev1.Pod) {
	for _, c := range pod.Status.ContainerStatuses {
		if c.State.Running == nil {
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.running[pod.UID]; ok {
		close(ch)
		delete(r.running, pod.UID)
	}
}

func (r *runningWatch) RemovePod(namespace, name string, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.removed[uid]; ok {
		close(ch)
		delete(r.removed, uid)
	}
}

type discardEvents struct{}

func (discardEvents) Eventf(k8sruntime.Object, string, string, string, ...any) {}
func (discardEvents) EventfOnField(k8sruntime.Object, string, string, string, string, ...any) {
}

// BenchmarkSyncWithPods measures starting one two-container pod (from
// SetDesired until it is published running) beside N running pods, on a
// fake runtime whose list costs 300 µs per container (containerd queries
// each task). The time per pod must not grow with N; lists/op counts the
// runtime lists the start caused.
func BenchmarkSyncWithPods(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("running=%d", n), func(b *testing.B) {
			rt := fake.New()
			rt.AddImage("busybox:1.36")
			watch := &runningWatch{running: map[types.UID]chan struct{}{}, removed: map[types.UID]chan struct{}{}}
			m, err := NewManager(Config{Runtime: rt, Pods: watch, Events: discardEvents{},
				StateFile: b.TempDir() + "/state.json", LogRoot: "/state/pods",
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}()
			base := podsNamed(n)
			var waits []chan struct{}
			for _, p := range base {
				r, _ := watch.expect(p.UID)
				waits = append(waits, r)
			}
			m.SetDesired(base)
			for _, w := range waits {
				<-w
			}
			rt.SetListCost(300 * time.Microsecond)
			startLists := 0
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				p := newTestPod(types.UID(fmt.Sprintf("bench%d", i)), corev1.RestartPolicyAlways, "a", "b")
				p.Name = fmt.Sprintf("bench%d", i)
				p.Spec.TerminationGracePeriodSeconds = new(int64)
				running, removed := watch.expect(p.UID)
				before, _ := rt.ListCount()
				b.StartTimer()
				m.SetDesired(append(base[:n:n], p))
				<-running
				b.StopTimer()
				after, _ := rt.ListCount()
				startLists += after - before
				m.SetDesired(base)
				<-removed
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(float64(startLists)/float64(b.N), "lists/op")
		})
	}
}
