package api

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/store"
)

// t0 is "now" for the fixtures: the server's and the store's clock.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(-d)) }

func ptr[T any](v T) *T { return &v }

type podOpt func(*corev1.Pod)

func newPod(ns, name string, created time.Duration, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			CreationTimestamp: ago(created),
		},
		Spec: corev1.PodSpec{
			NodeName: "board-1", RestartPolicy: corev1.RestartPolicyAlways,
			Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func labelled(kv ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Labels[kv[i]] = kv[i+1]
		}
	}
}

func running(ip string, containers ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = nil
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: c, Ready: true, Started: ptr(true), Image: "busybox",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Minute)}},
			})
		}
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		}
	}
}

func waiting(reason string) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "busybox",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		}}
	}
}

// fixturePods are pods in the states the kubectl tests look for.
func fixturePods() []*corev1.Pod {
	crash := newPod("default", "crash", 5*time.Minute, labelled("app", "crash", "tier", "back"), func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP, p.Status.PodIPs = "10.88.0.6", []corev1.PodIP{{IP: "10.88.0.6"}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "busybox", RestartCount: 3,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container=app pod=crash_default(uid-crash)",
			}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", FinishedAt: ago(45 * time.Second),
			}},
		}}
	})
	done := newPod("default", "done", 2*time.Hour, labelled("app", "batch"), func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "busybox",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}},
		}}
	})
	initwait := newPod("default", "initwait", 20*time.Second, labelled("app", "init"), func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox"}}
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{
			Name: "setup", Image: "busybox",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(10 * time.Second)}},
		}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "busybox",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}},
		}}
	})
	term := newPod("default", "term", 3*time.Minute, labelled("app", "web", "tier", "front"), running("10.88.0.9", "app"), func(p *corev1.Pod) {
		p.DeletionTimestamp = ptr(ago(5 * time.Second))
	})
	return []*corev1.Pod{
		newPod("default", "web", 10*time.Minute, labelled("app", "web", "tier", "front"), running("10.88.0.5", "nginx", "sidecar")),
		crash, done, initwait, term,
		newPod("other", "pending", 30*time.Second, labelled("app", "pending"), waiting("ContainerCreating"), func(p *corev1.Pod) { p.Spec.NodeName = "" }),
		newPod("other", "pullerr", 90*time.Second, labelled("app", "pull", "tier", "back"), waiting("ErrImagePull")),
	}
}

func fixtureNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "board-1", UID: "node-uid", CreationTimestamp: ago(26 * time.Hour),
			Labels: map[string]string{"kubernetes.io/hostname": "board-1", "node-role.kubernetes.io/edge": ""},
		},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "kubelet is posting ready status", LastHeartbeatTime: ago(10 * time.Second), LastTransitionTime: ago(26 * time.Hour),
			}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.2.15"}, {Type: corev1.NodeHostName, Address: "board-1"}},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: "v1.37.2", OSImage: "podboot", KernelVersion: "6.1.0-arm64",
				ContainerRuntimeVersion: "containerd://2.4.2", OperatingSystem: "linux", Architecture: "arm64",
			},
		},
	}
}

// fixtureLease is the node's lease as kubelet keeps it, renewed at renew.
func fixtureLease(renew time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "kube-node-lease", Name: "board-1", UID: "lease-uid", CreationTimestamp: ago(26 * time.Hour),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "board-1", UID: "node-uid"}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr("board-1"), LeaseDurationSeconds: ptr(int32(40)),
			RenewTime: &metav1.MicroTime{Time: renew},
		},
	}
}

// populate fills st with the fixtures and records events as kubelet would.
func populate(t *testing.T, st *store.Store) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"default", "kube-system", "other"} {
		must(st.Put(&corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: ns, CreationTimestamp: ago(26 * time.Hour)},
			Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
		}))
	}
	must(st.Put(fixtureNode()))
	for _, p := range fixturePods() {
		must(st.Put(p))
	}
	clock := t0.Add(-4 * time.Minute)
	rec := store.NewRecorder(st, "board-1", func() time.Time { return clock })
	web, _ := st.Get(store.KindPod, "default", "web")
	crash, _ := st.Get(store.KindPod, "default", "crash")
	rec.Eventf(fixtureNode(), corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	rec.EventfOnField(web, "spec.containers{nginx}", corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", "busybox")
	rec.EventfOnField(web, "spec.containers{nginx}", corev1.EventTypeNormal, "Started", "Started container nginx")
	for i := range 3 {
		clock = t0.Add(-time.Duration(3-i) * time.Minute)
		rec.EventfOnField(crash, "spec.containers{app}", corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container app in pod crash_default(uid-crash)")
	}
	// Last, so that the other objects keep their resourceVersions.
	must(st.Put(&corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-node-lease", CreationTimestamp: ago(26 * time.Hour)},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}))
	must(st.Put(fixtureLease(t0.Add(-7 * time.Second))))
}

// fakeLogs serves canned logs: three lines per container.
type fakeLogs struct{}

func (fakeLogs) Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions, w io.Writer) error {
	if pod == "pending" {
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", opts.Container, pod))
	}
	if pod == "gone" {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, pod)
	}
	var lines []string
	if opts.Previous {
		lines = []string{"previous run of " + opts.Container}
	} else {
		for i := 1; i <= 3; i++ {
			lines = append(lines, fmt.Sprintf("%s/%s line %d", pod, opts.Container, i))
		}
	}
	if opts.TailLines != nil && int(*opts.TailLines) < len(lines) {
		lines = lines[len(lines)-int(*opts.TailLines):]
	}
	if opts.Follow {
		lines = append(lines, "followed")
	}
	for i, l := range lines {
		if opts.Timestamps {
			l = t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano) + " " + l
		}
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// newTestServer serves the fixtures on 127.0.0.1 with the clock at t0.
func newTestServer(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	st := store.New(func() time.Time { return t0 })
	populate(t, st)
	s := newServer(st, fakeLogs{}, Options{NodeName: "board-1", GitVersion: "v1.37.2"})
	s.now = func() time.Time { return t0 }
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, st
}
