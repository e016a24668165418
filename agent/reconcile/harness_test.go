package reconcile

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/podboot/podboot/agent/runtime/fake"
	"github.com/podboot/podboot/agent/store"
)

// recorder collects events as "Type Reason field: message".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(obj k8sruntime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.EventfOnField(obj, "", eventtype, reason, messageFmt, args...)
}

func (r *recorder) EventfOnField(obj k8sruntime.Object, fieldPath, eventtype, reason, messageFmt string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pod := obj.(*corev1.Pod)
	r.events = append(r.events, fmt.Sprintf("%s %s %s %s: %s", pod.UID, eventtype, reason, fieldPath, fmt.Sprintf(messageFmt, args...)))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// publisher keeps the last published version of each pod.
type publisher struct {
	mu      sync.Mutex
	pods    map[types.UID]*corev1.Pod
	removed []types.UID
	// history has every published version, in order.
	history []*corev1.Pod
	// onPublish, when set, runs on every publish (before it is stored).
	onPublish func(pod *corev1.Pod)
	// store, when set, gets every publish and removal too, as the agent's
	// API store does, so a test can watch what kubectl would see; t
	// reports its errors.
	store *store.Store
	t     *testing.T
}

func (p *publisher) PublishPod(pod *corev1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pods == nil {
		p.pods = map[types.UID]*corev1.Pod{}
	}
	if p.onPublish != nil {
		p.onPublish(pod)
	}
	p.pods[pod.UID] = pod
	p.history = append(p.history, pod)
	if p.store != nil {
		if err := p.store.Put(pod.DeepCopy()); err != nil {
			p.t.Errorf("put pod %s in the store: %v", pod.UID, err)
		}
	}
}

func (p *publisher) RemovePod(namespace, name string, uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pods, uid)
	p.removed = append(p.removed, uid)
	if p.store != nil {
		if err := p.store.Delete("Pod", namespace, name); err != nil {
			p.t.Errorf("delete pod %s/%s from the store: %v", namespace, name, err)
		}
	}
}

func (p *publisher) get(uid types.UID) *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pods[uid]
}

// env is a Manager on a fake runtime inside a synctest bubble.
type env struct {
	t      *testing.T
	rt     *fake.Runtime
	pub    *publisher
	rec    *recorder
	m      *Manager
	cancel context.CancelFunc
	done   chan error
	state  string
}

func newEnv(t *testing.T, rt *fake.Runtime, stateFile string) *env {
	t.Helper()
	e := &env{t: t, rt: rt, pub: &publisher{}, rec: &recorder{}, state: stateFile}
	m, err := NewManager(Config{Runtime: rt, Pods: e.pub, Events: e.rec, StateFile: stateFile,
		LogRoot: "/state/pods", NodeName: "board", HostIP: "192.168.1.10"})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

// watchPods makes the publisher feed a store, as the agent's API store is
// fed, before anything is published; watch then watches it.
func (e *env) watchPods() {
	e.pub.mu.Lock()
	defer e.pub.mu.Unlock()
	e.pub.store, e.pub.t = store.New(nil), e.t
}

// watch watches the store's pods from now on, as a kubectl that has just
// listed them does; changes are read with drain.
func (e *env) watch() <-chan watch.Event {
	e.t.Helper()
	st := e.pub.store
	ch, err := st.Watch(e.t.Context(), "Pod", "", st.ResourceVersion())
	if err != nil {
		e.t.Fatal(err)
	}
	return ch
}

// drain returns the events received so far on a watch, each as
// "TYPE name uid" plus, for a terminating pod, its deletion grace and
// deletionTimestamp relative to since, and its containers' states.
func drain(ch <-chan watch.Event, since time.Time) []string {
	var out []string
	for _, ev := range drainEvents(ch) {
		out = append(out, describeEvent(ev, since))
	}
	return out
}

// drainEvents returns the events received so far on a watch; a closed
// watch ends with an ERROR event.
func drainEvents(ch <-chan watch.Event) []watch.Event {
	var out []watch.Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return append(out, watch.Event{Type: watch.Error, Object: &corev1.Pod{}})
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

func describeEvent(ev watch.Event, since time.Time) string {
	pod := ev.Object.(*corev1.Pod)
	s := fmt.Sprintf("%s %s", ev.Type, pod.UID)
	if ev.Type == watch.Deleted {
		return s
	}
	if pod.DeletionTimestamp != nil {
		grace := "nil"
		if g := pod.DeletionGracePeriodSeconds; g != nil {
			grace = fmt.Sprint(*g)
		}
		s += fmt.Sprintf(" deletionTimestamp=+%s grace=%s", pod.DeletionTimestamp.Sub(since), grace)
	}
	for _, c := range pod.Status.ContainerStatuses {
		s += fmt.Sprintf(" %s=%s", c.Name, containerState(pod.Status, c.Name))
	}
	return s
}

func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- e.m.Run(ctx) }()
	synctest.Wait()
}

func (e *env) stop() {
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Run: %v", err)
	}
}

func (e *env) status(uid types.UID) corev1.PodStatus {
	e.t.Helper()
	p := e.pub.get(uid)
	if p == nil {
		e.t.Fatalf("pod %s not published", uid)
	}
	return p.Status
}

// advance lets synthetic time pass and everything settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func newTestPod(uid types.UID, policy corev1.RestartPolicy, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: uid},
		Spec:       corev1.PodSpec{RestartPolicy: policy},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox:1.36", ImagePullPolicy: corev1.PullIfNotPresent})
	}
	return p
}

func containerState(s corev1.PodStatus, name string) string {
	for _, c := range append(append([]corev1.ContainerStatus{}, s.InitContainerStatuses...), s.ContainerStatuses...) {
		if c.Name == name {
			return fmt.Sprintf("%s restarts=%d", stateString(c.State), c.RestartCount)
		}
	}
	return "missing"
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated %s %d", s.Terminated.Reason, s.Terminated.ExitCode)
	case s.Waiting != nil:
		if s.Waiting.Message != "" {
			return "waiting " + s.Waiting.Reason + ": " + s.Waiting.Message
		}
		return "waiting " + s.Waiting.Reason
	}
	return "none"
}
