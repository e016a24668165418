package reconcile

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/backoff"
	"github.com/podboot/podboot/agent/runtime"
)

var (
	t0  = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ref = runtime.PodRef{UID: "uid-1", Namespace: "default", Name: "web"}
	sb  = &runtime.Sandbox{Pod: ref, IP: "10.88.0.2"}
)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func testPod(policy corev1.RestartPolicy, inits []string, apps ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace, UID: ref.UID},
		Spec: corev1.PodSpec{RestartPolicy: policy}}
	for _, n := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "busybox"})
	}
	for _, n := range apps {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "busybox"})
	}
	return p
}

func inst(id, name string, attempt int32, state runtime.ContainerState, finished int, code int32) runtime.ContainerStatus {
	c := runtime.ContainerStatus{ID: id, Pod: ref, Name: name, Attempt: attempt, State: state,
		CreatedAt: at(int(attempt) * 100), ExitCode: code}
	if state == runtime.ContainerExited {
		c.FinishedAt = at(finished)
	}
	return c
}

// brief is the comparable part of Actions.
type brief struct {
	CreateSandbox, KillPod, Finished, Cleanup bool
	Start                                     []string // name@attempt (init: "init:")
	BackOff                                   []string
	Kill, Remove                              []string
}

func summarize(a Actions) brief {
	b := brief{CreateSandbox: a.CreateSandbox, KillPod: a.KillPod, Finished: a.Finished, Cleanup: a.Cleanup, Kill: a.Kill, Remove: a.Remove}
	for _, s := range a.Start {
		n := s.Container.Name
		if s.Init {
			n = "init:" + n
		}
		b.Start = append(b.Start, n+"@"+string(rune('0'+s.Attempt)))
	}
	for _, s := range a.BackOff {
		b.BackOff = append(b.BackOff, s.Message)
	}
	return b
}

func TestComputeActions(t *testing.T) {
	const (
		run = runtime.ContainerRunning
		ex  = runtime.ContainerExited
		unk = runtime.ContainerUnknown
	)
	deleted := func(p *corev1.Pod) *corev1.Pod {
		p.DeletionTimestamp = &metav1.Time{Time: at(1000)}
		return p
	}
	// The backoff as kubelet leaves it after restarts at these finish times.
	inBackoff := func(restarts int) *backoff.Backoff {
		b := backoff.NewDefault()
		for i := range restarts {
			b.Next(backoff.ContainerKey(ref.UID, "app"), at(i*100+50), at(i*100+50))
		}
		return b
	}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		sandbox  *runtime.Sandbox
		observed []runtime.ContainerStatus
		bo       *backoff.Backoff
		now      int
		want     brief
	}{
		{name: "new pod: sandbox and every container",
			pod:  testPod(corev1.RestartPolicyAlways, nil, "a", "b"),
			want: brief{CreateSandbox: true, Start: []string{"a@0", "b@0"}}},
		{name: "new pod with init containers: the first init only",
			pod:  testPod(corev1.RestartPolicyAlways, []string{"i1", "i2"}, "a"),
			want: brief{CreateSandbox: true, Start: []string{"init:i1@0"}}},
		{name: "init running: wait",
			pod: testPod(corev1.RestartPolicyAlways, []string{"i1", "i2"}, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "i1", 0, run, 0, 0)},
			want:     brief{}},
		{name: "first init done: the second",
			pod: testPod(corev1.RestartPolicyAlways, []string{"i1", "i2"}, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "i1", 0, ex, 5, 0)},
			want:     brief{Start: []string{"init:i2@0"}}},
		{name: "all init done: app containers",
			pod: testPod(corev1.RestartPolicyAlways, []string{"i1", "i2"}, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "i1", 0, ex, 5, 0), inst("c2", "i2", 0, ex, 6, 0)},
			want:     brief{Start: []string{"a@0"}}},
		{name: "failed init under Never: the pod fails",
			pod: testPod(corev1.RestartPolicyNever, []string{"i1"}, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "i1", 0, ex, 5, 1)},
			want:     brief{KillPod: true, Finished: true}},
		{name: "failed init under OnFailure: restarted first time",
			pod: testPod(corev1.RestartPolicyOnFailure, []string{"i1"}, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "i1", 0, ex, 5, 1)},
			bo:       backoff.NewDefault(), now: 6,
			want: brief{Start: []string{"init:i1@1"}}},
		{name: "running pod: nothing",
			pod: testPod(corev1.RestartPolicyAlways, nil, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, run, 0, 0)},
			want:     brief{}},
		{name: "exit 0 under Always: restart",
			pod: testPod(corev1.RestartPolicyAlways, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "app", 0, ex, 50, 0)}, now: 51,
			want: brief{Start: []string{"app@1"}}},
		{name: "second crash within 10s of the first restart: back-off 10s",
			pod: testPod(corev1.RestartPolicyAlways, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "app", 0, ex, 50, 1), inst("c2", "app", 1, ex, 150, 1)},
			bo:       inBackoff(1), now: 155,
			want: brief{BackOff: []string{"back-off 10s restarting failed container=app pod=web_default(uid-1)"}, Remove: []string{"c1"}}},
		{name: "backoff over: restart",
			pod: testPod(corev1.RestartPolicyAlways, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "app", 0, ex, 50, 1), inst("c2", "app", 1, ex, 150, 1)},
			bo:       inBackoff(1), now: 160,
			want: brief{Start: []string{"app@2"}, Remove: []string{"c1"}}},
		{name: "the message shows the current backoff in Go format",
			pod: testPod(corev1.RestartPolicyAlways, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c6", "app", 6, ex, 650, 1)},
			bo:       inBackoff(6), now: 651,
			want: brief{BackOff: []string{"back-off 5m0s restarting failed container=app pod=web_default(uid-1)"}}},
		{name: "exit 0 under OnFailure: done",
			pod: testPod(corev1.RestartPolicyOnFailure, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "app", 0, ex, 50, 0)},
			want:     brief{KillPod: true, Finished: true}},
		{name: "exit 1 under OnFailure: restart",
			pod: testPod(corev1.RestartPolicyOnFailure, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "app", 0, ex, 50, 1)}, now: 51,
			want: brief{Start: []string{"app@1"}}},
		{name: "Never: done when every container exited",
			pod: testPod(corev1.RestartPolicyNever, nil, "a", "b"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, ex, 50, 0), inst("c2", "b", 0, ex, 50, 1)},
			want:     brief{KillPod: true, Finished: true}},
		{name: "Never: keep going while one runs",
			pod: testPod(corev1.RestartPolicyNever, nil, "a", "b"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, ex, 50, 0), inst("c2", "b", 0, run, 0, 0)},
			want:     brief{}},
		{name: "unknown container: killed and restarted even under Never",
			pod: testPod(corev1.RestartPolicyNever, nil, "a"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, unk, 0, 0)},
			want:     brief{Kill: []string{"c1"}, Start: []string{"a@1"}}},
		{name: "old instances removed, newest exited kept",
			pod: testPod(corev1.RestartPolicyAlways, nil, "app"), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "app", 0, ex, 50, 1), inst("c2", "app", 1, ex, 150, 1), inst("c3", "app", 2, run, 0, 0)},
			want:     brief{Remove: []string{"c1"}}},
		{name: "deleted: kill what runs",
			pod: deleted(testPod(corev1.RestartPolicyAlways, nil, "a", "b")), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, run, 0, 0), inst("c2", "b", 0, ex, 5, 0)},
			want:     brief{KillPod: true, Kill: []string{"c1"}}},
		{name: "deleted and stopped: clean up",
			pod: deleted(testPod(corev1.RestartPolicyAlways, nil, "a")), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, ex, 5, 0)},
			want:     brief{KillPod: true, Cleanup: true}},
		{name: "deleted with an instance that never started: it does not hold the clean-up",
			pod: deleted(testPod(corev1.RestartPolicyAlways, nil, "a")), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, ex, 5, 1), inst("c2", "a", 1, runtime.ContainerCreated, 0, 0)},
			want:     brief{KillPod: true, Cleanup: true}},
		{name: "deleted with an unknown instance: kill it",
			pod: deleted(testPod(corev1.RestartPolicyAlways, nil, "a")), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, unk, 0, 0)},
			want:     brief{KillPod: true, Kill: []string{"c1"}}},
		{name: "sandbox lost: stop the orphans first",
			pod:      testPod(corev1.RestartPolicyAlways, nil, "a"),
			observed: []runtime.ContainerStatus{inst("c1", "a", 0, run, 0, 0)},
			want:     brief{CreateSandbox: true, Kill: []string{"c1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bo := tt.bo
			if bo == nil {
				bo = backoff.NewDefault()
			}
			got := summarize(ComputeActions(tt.pod, tt.sandbox, tt.observed, nil, bo, at(tt.now)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeActionsRetryAt(t *testing.T) {
	bo := backoff.NewDefault()
	key := backoff.ContainerKey(ref.UID, "app")
	bo.Next(key, at(0), at(1)) // 10s
	bo.Next(key, at(5), at(6)) // 20s
	pod := testPod(corev1.RestartPolicyAlways, nil, "app")
	a := ComputeActions(pod, sb, []runtime.ContainerStatus{inst("c1", "app", 2, ex(), 10, 1)}, nil, bo, at(12))
	if want := at(30); !a.RetryAt.Equal(want) {
		t.Errorf("RetryAt = %v, want %v", a.RetryAt, want)
	}
}

func ex() runtime.ContainerState { return runtime.ContainerExited }
