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

// sidecars makes the named init containers restartable (restartPolicy
// Always).
func sidecars(p *corev1.Pod, names ...string) *corev1.Pod {
	always := corev1.ContainerRestartPolicyAlways
	for i := range p.Spec.InitContainers {
		for _, n := range names {
			if p.Spec.InitContainers[i].Name == n {
				p.Spec.InitContainers[i].RestartPolicy = &always
			}
		}
	}
	return p
}

func initInst(id, name string, attempt int32, state runtime.ContainerState, finished int, code int32) runtime.ContainerStatus {
	c := inst(id, name, attempt, state, finished, code)
	c.Init = true
	return c
}

func TestComputeActionsSidecars(t *testing.T) {
	const (
		run = runtime.ContainerRunning
		ex  = runtime.ContainerExited
		unk = runtime.ContainerUnknown
	)
	// proxy is a sidecar, setup a regular init container after it.
	pod := func(policy corev1.RestartPolicy) *corev1.Pod {
		return sidecars(testPod(policy, []string{"proxy", "setup"}, "app"), "proxy")
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
		{name: "new pod: the sidecar first",
			pod:  pod(corev1.RestartPolicyAlways),
			want: brief{CreateSandbox: true, Start: []string{"init:proxy@0"}}},
		{name: "sidecar started: the next init container",
			pod: pod(corev1.RestartPolicyAlways), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0)},
			want:     brief{Start: []string{"init:setup@0"}}},
		{name: "next init running: wait",
			pod: pod(corev1.RestartPolicyAlways), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0), initInst("c2", "setup", 0, run, 0, 0)},
			want:     brief{}},
		{name: "init done: app containers, the sidecar keeps running",
			pod: pod(corev1.RestartPolicyAlways), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0), initInst("c2", "setup", 0, ex, 5, 0)},
			want:     brief{Start: []string{"app@0"}}},
		{name: "sidecar last: app containers once it runs",
			pod: sidecars(testPod(corev1.RestartPolicyAlways, []string{"proxy"}, "app"), "proxy"), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0)},
			want:     brief{Start: []string{"app@0"}}},
		{name: "sidecar exited 0 under Never while the app runs: restarted",
			pod: pod(corev1.RestartPolicyNever), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, ex, 50, 0), initInst("c2", "setup", 0, ex, 5, 0), inst("c3", "app", 0, run, 0, 0)},
			now:      51,
			want:     brief{Start: []string{"init:proxy@1"}}},
		{name: "sidecar crashing again: back-off",
			pod: sidecars(testPod(corev1.RestartPolicyAlways, []string{"proxy"}, "app"), "proxy"), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 1, ex, 150, 1), inst("c3", "app", 0, run, 0, 0)},
			bo: func() *backoff.Backoff {
				b := backoff.NewDefault()
				b.Next(backoff.ContainerKey(ref.UID, "proxy"), at(50), at(50))
				return b
			}(), now: 155,
			want: brief{BackOff: []string{"back-off 10s restarting failed container=proxy pod=web_default(uid-1)"}}},
		{name: "sidecar removed from the runtime after init: restarted, init not rerun",
			pod: pod(corev1.RestartPolicyAlways), sandbox: sb,
			observed: []runtime.ContainerStatus{inst("c3", "app", 0, run, 0, 0)},
			want:     brief{Start: []string{"init:proxy@0"}}},
		{name: "sidecar unknown: killed and restarted",
			pod: pod(corev1.RestartPolicyNever), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, unk, 0, 0), inst("c3", "app", 0, run, 0, 0)},
			want:     brief{Kill: []string{"c1"}, Start: []string{"init:proxy@1"}}},
		{name: "app done under Never: the sidecar is stopped, the pod finished",
			pod: pod(corev1.RestartPolicyNever), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0), initInst("c2", "setup", 0, ex, 5, 0), inst("c3", "app", 0, ex, 50, 0)},
			want:     brief{KillPod: true, Finished: true, Kill: []string{"c1"}}},
		{name: "app done under OnFailure, sidecar stopped: not restarted",
			pod: pod(corev1.RestartPolicyOnFailure), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, ex, 51, 137), initInst("c2", "setup", 0, ex, 5, 0), inst("c3", "app", 0, ex, 50, 0)},
			now:      60,
			want:     brief{KillPod: true, Finished: true}},
		{name: "init after the sidecar failed under Never: the pod fails, the sidecar stops",
			pod: pod(corev1.RestartPolicyNever), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0), initInst("c2", "setup", 0, ex, 5, 1)},
			want:     brief{KillPod: true, Finished: true, Kill: []string{"c1"}}},
		{name: "deleted: everything killed (the executor orders them)",
			pod: func() *corev1.Pod {
				p := pod(corev1.RestartPolicyAlways)
				p.DeletionTimestamp = ptrTime(at(1000))
				return p
			}(), sandbox: sb,
			observed: []runtime.ContainerStatus{initInst("c1", "proxy", 0, run, 0, 0), initInst("c2", "setup", 0, ex, 5, 0), inst("c3", "app", 0, run, 0, 0)},
			want:     brief{KillPod: true, Kill: []string{"c1", "c3"}}},
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

func ptrTime(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }
