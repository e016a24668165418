package podstatus

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/runtime"
)

func TestTransitionTimesAndStartTime(t *testing.T) {
	pod := newPod(corev1.RestartPolicyAlways)
	first := Compute(Input{Pod: pod, Sandbox: sandbox, Now: at(1)})
	second := Compute(Input{Pod: pod, Sandbox: sandbox, Previous: &first,
		Containers: []runtime.ContainerStatus{running("app", 0, 5)}, Now: at(6)})
	third := Compute(Input{Pod: pod, Sandbox: sandbox, Previous: &second,
		Containers: []runtime.ContainerStatus{running("app", 0, 5)}, Now: at(60)})

	times := func(s corev1.PodStatus) map[corev1.PodConditionType]metav1.Time {
		out := map[corev1.PodConditionType]metav1.Time{}
		for _, c := range s.Conditions {
			out[c.Type] = c.LastTransitionTime
		}
		return out
	}
	want := map[corev1.PodConditionType]metav1.Time{
		corev1.PodReadyToStartContainers: mt(1),
		corev1.PodInitialized:            mt(1),
		corev1.PodReady:                  mt(6), // False -> True at 6
		corev1.ContainersReady:           mt(6),
		corev1.PodScheduled:              mt(1),
	}
	if diff := cmp.Diff(want, times(third)); diff != "" {
		t.Errorf("lastTransitionTime (-want +got):\n%s", diff)
	}
	if !third.StartTime.Equal(ptr(mt(1))) {
		t.Errorf("startTime = %v, want %v", third.StartTime, mt(1))
	}
}

func TestVanishedRunningContainer(t *testing.T) {
	pod := newPod(corev1.RestartPolicyAlways)
	prev := Compute(Input{Pod: pod, Sandbox: sandbox, Containers: []runtime.ContainerStatus{running("app", 0, 1)}, Now: at(2)})
	got := Compute(Input{Pod: pod, Sandbox: sandbox, Previous: &prev, Now: at(3)})
	want := []string{"app: waiting ContainerCreating (last terminated ContainerStatusUnknown 137) restarts=1"}
	if diff := cmp.Diff(want, summarize(got).Containers); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
}

// probeResults is a prober's results by container ID; absent = no result.
type probeResults struct{ ready, started map[string]bool }

func (p probeResults) Readiness(id string) (bool, bool) { ok, known := p.ready[id]; return ok, known }
func (p probeResults) Startup(id string) (bool, bool)   { ok, known := p.started[id]; return ok, known }

// TestProbeResults: started and ready as kubelet's prober manager sets
// them (UpdatePodStatus, isContainerStarted).
func TestProbeResults(t *testing.T) {
	readiness := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
	startup := readiness.DeepCopy()
	withProbes := func(r, s bool) podOpt {
		return func(p *corev1.Pod) {
			if r {
				p.Spec.Containers[0].ReadinessProbe = readiness
			}
			if s {
				p.Spec.Containers[0].StartupProbe = startup
			}
		}
	}
	notReady := "False ContainersNotReady: containers with unready status: [app]"
	tests := []struct {
		name             string
		readiness, start bool
		probes           probeResults
		wantStarted      bool
		wantReady        bool
	}{
		{name: "no probes: running is started and ready", wantStarted: true, wantReady: true},
		{name: "readiness probe without a result", readiness: true, wantStarted: true},
		{name: "readiness succeeded", readiness: true, probes: probeResults{ready: map[string]bool{"app-a": true}}, wantStarted: true, wantReady: true},
		{name: "readiness failed", readiness: true, probes: probeResults{ready: map[string]bool{"app-a": false}}, wantStarted: true},
		{name: "another instance's result does not count", readiness: true, probes: probeResults{ready: map[string]bool{"app-z": true}}, wantStarted: true},
		{name: "startup probe without a result: neither started nor ready", start: true},
		{name: "startup probe failed", start: true, probes: probeResults{started: map[string]bool{"app-a": false}}},
		{name: "started: ready without a readiness probe", start: true, probes: probeResults{started: map[string]bool{"app-a": true}}, wantStarted: true, wantReady: true},
		{name: "not started: a readiness success does not count", readiness: true, start: true, probes: probeResults{ready: map[string]bool{"app-a": true}}},
		{name: "started and ready", readiness: true, start: true, probes: probeResults{ready: map[string]bool{"app-a": true}, started: map[string]bool{"app-a": true}}, wantStarted: true, wantReady: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod(corev1.RestartPolicyAlways, withProbes(tt.readiness, tt.start))
			got := Compute(Input{Pod: pod, Sandbox: sandbox, Containers: []runtime.ContainerStatus{running("app", 0, 1)}, Now: at(2), Probes: tt.probes})
			cs := got.ContainerStatuses[0]
			if *cs.Started != tt.wantStarted || cs.Ready != tt.wantReady {
				t.Errorf("started=%v ready=%v, want started=%v ready=%v", *cs.Started, cs.Ready, tt.wantStarted, tt.wantReady)
			}
			wantConds := conds("True", "True", notReady, notReady)
			if tt.wantReady {
				wantConds = conds("True", "True", "True", "True")
			}
			if diff := cmp.Diff(wantConds, summarize(got).Conditions); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProbeResultsAcrossAgentRestart: a container running before the
// agent started keeps the started and ready it showed until its probes'
// first results (kubelet's setReadyStateOnKubeletRestart); one started
// since waits for them.
func TestProbeResultsAcrossAgentRestart(t *testing.T) {
	pod := newPod(corev1.RestartPolicyAlways, func(p *corev1.Pod) {
		probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		p.Spec.Containers[0].ReadinessProbe, p.Spec.Containers[0].StartupProbe = probe, probe.DeepCopy()
	})
	c := running("app", 0, 1)
	ok := probeResults{ready: map[string]bool{"app-a": true}, started: map[string]bool{"app-a": true}}
	before := Compute(Input{Pod: pod, Sandbox: sandbox, Containers: []runtime.ContainerStatus{c}, Now: at(2), Probes: ok})
	for _, tt := range []struct {
		name         string
		agentStarted time.Time
		want         bool
	}{
		{"container older than the agent", at(5), true},
		{"container younger than the agent", at(0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(Input{Pod: pod, Sandbox: sandbox, Containers: []runtime.ContainerStatus{c}, Now: at(6),
				Previous: &before, AgentStarted: tt.agentStarted, Probes: probeResults{}})
			cs := got.ContainerStatuses[0]
			if *cs.Started != tt.want || cs.Ready != tt.want {
				t.Errorf("started=%v ready=%v, want both %v", *cs.Started, cs.Ready, tt.want)
			}
		})
	}
}

func TestStartErrorNeverStarted(t *testing.T) {
	c := exited("app", 0, 1, 1, 128)
	c.StartedAt = time.Time{}
	c.Reason, c.Message = "StartError", "exec: nope"
	got := Compute(Input{Pod: newPod(corev1.RestartPolicyNever), Sandbox: sandbox, Containers: []runtime.ContainerStatus{c}, Now: at(2)})
	want := &corev1.ContainerStateTerminated{
		ExitCode: 128, Reason: "StartError", Message: "exec: nope",
		StartedAt: metav1.NewTime(time.Unix(0, 0).UTC()), FinishedAt: mt(1), ContainerID: "containerd://app-a",
	}
	if diff := cmp.Diff(want, got.ContainerStatuses[0].State.Terminated); diff != "" {
		t.Errorf("terminated (-want +got):\n%s", diff)
	}
}

// TestQOSClass: the published status carries the pod's QoS class
// (agent/resources has the classification's own tests).
func TestQOSClass(t *testing.T) {
	tests := []struct {
		name string
		req  string
		lim  string
		want corev1.PodQOSClass
	}{
		{"no resources", "", "", corev1.PodQOSBestEffort},
		{"requests only", "100m", "", corev1.PodQOSBurstable},
		{"limits equal requests", "100m", "100m", corev1.PodQOSGuaranteed},
		{"limits above requests", "100m", "200m", corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compute(Input{Pod: newPod(corev1.RestartPolicyAlways, withResources(tt.req, tt.lim))}).QOSClass; got != tt.want {
				t.Errorf("QOSClass = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("one container without limits", func(t *testing.T) {
		p := newPod(corev1.RestartPolicyAlways, withContainers("a", "b"), withResources("100m", "100m"))
		if got := Compute(Input{Pod: p}).QOSClass; got != corev1.PodQOSBurstable {
			t.Errorf("QOSClass = %s, want Burstable", got)
		}
	})
}
