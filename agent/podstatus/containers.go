package podstatus

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// Container waiting and terminated reasons as kubelet and containerd's CRI
// report them.
const (
	ReasonContainerCreating      = "ContainerCreating"
	ReasonPodInitializing        = "PodInitializing"
	ReasonCompleted              = "Completed"
	ReasonError                  = "Error"
	ReasonOOMKilled              = "OOMKilled"
	ReasonStartError             = "StartError"
	ReasonContainerStatusUnknown = "ContainerStatusUnknown"
)

// ContainerIDPrefix is the runtime type kubelet prefixes container IDs with.
const ContainerIDPrefix = "containerd://"

// containerStatuses is kubelet's convertToAPIContainerStatuses for one list
// of containers (init or app) plus the probe manager's ready/started.
func containerStatuses(in Input, specs []corev1.Container, previous []corev1.ContainerStatus, isInit bool) []corev1.ContainerStatus {
	pod := in.Pod
	old := make(map[string]corev1.ContainerStatus, len(previous))
	for _, s := range previous {
		old[s.Name] = s
	}
	defaultWaiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}}
	if len(pod.Spec.InitContainers) > 0 {
		defaultWaiting = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonPodInitializing}}
	}
	instances := newestTwo(in.Containers)

	out := make([]corev1.ContainerStatus, len(specs))
	for i, spec := range specs {
		st := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, State: defaultWaiting}
		o, hadOld := old[spec.Name]
		if hadOld {
			if o.State.Terminated != nil {
				st = *o.DeepCopy()
			} else {
				st.RestartCount = o.RestartCount
				st.LastTerminationState = *o.LastTerminationState.DeepCopy()
			}
		}
		seen := instances[spec.Name]
		switch {
		case len(seen) > 0:
			var oldPtr *corev1.ContainerStatus
			if hadOld {
				oldPtr = &o
			}
			st = convert(spec, seen[0], oldPtr)
			if len(seen) > 1 {
				st.LastTerminationState = convert(spec, seen[1], nil).State
			}
		case hadOld && o.State.Terminated == nil && o.State.Running != nil &&
			st.LastTerminationState.Terminated == nil:
			// The runtime lost a container that was running: show that it
			// terminated rather than pretend it never ran.
			st.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
				Reason:   ReasonContainerStatusUnknown,
				Message:  "The container could not be located when the pod was deleted.  The container used to be Running",
				ExitCode: 137,
			}
			if pod.DeletionTimestamp == nil {
				st.RestartCount++
			}
		}
		applyWaitingReason(in, spec, &st, isInit)
		setReadiness(in, &specs[i], &st, isInit)
		out[i] = st
	}
	return out
}

// applyWaitingReason shows the reason cache's entry for a container that
// will be started again (kubelet: "If a container should be restarted in
// next syncpod, it is *Waiting*").
func applyWaitingReason(in Input, spec corev1.Container, st *corev1.ContainerStatus, isInit bool) {
	latest := Latest(in.Containers, spec.Name)
	if isInit && !IsRestartableInitContainer(&spec) {
		if latest != nil && latest.State == runtime.ContainerExited && latest.ExitCode == 0 && !latest.OOMKilled {
			return
		}
		if latest == nil && anyRegularContainerCreated(in) && st.State.Waiting != nil {
			st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason:  ReasonCompleted,
				Message: "Unable to get init container status from container runtime and pod has been initialized, treat it as exited normally",
			}}
			return
		}
	}
	if !ShouldContainerBeRestarted(in.Pod, latest) {
		return
	}
	w, ok := in.Waiting[spec.Name]
	if !ok {
		return
	}
	if st.State.Terminated != nil {
		st.LastTerminationState = st.State
	}
	st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: w.Reason, Message: w.Message}}
}

func anyRegularContainerCreated(in Input) bool {
	for _, c := range in.Pod.Spec.Containers {
		if Latest(in.Containers, c.Name) != nil {
			return true
		}
	}
	return false
}

// setReadiness is the probe manager's UpdatePodStatus: a running container
// is started once its startup probe succeeded (at once without one), and
// a started one is ready once its readiness probe succeeded (at once
// without one); an init container that is not a sidecar is ready when it
// exited 0.
func setReadiness(in Input, spec *corev1.Container, st *corev1.ContainerStatus, isInit bool) {
	started := isStarted(in, spec, st)
	st.Started = &started
	if isInit && !IsRestartableInitContainer(spec) {
		st.Ready = st.State.Terminated != nil && st.State.Terminated.ExitCode == 0
		return
	}
	st.Ready = false
	if !started || st.State.Running == nil {
		return
	}
	if spec.ReadinessProbe == nil {
		st.Ready = true
		return
	}
	if in.Probes != nil {
		if ok, known := in.Probes.Readiness(trimID(st.ContainerID)); known {
			st.Ready = ok
			return
		}
	}
	st.Ready = keptAcrossRestart(in, st, func(o corev1.ContainerStatus) bool { return o.Ready })
}

// isStarted is kubelet's isContainerStarted.
func isStarted(in Input, spec *corev1.Container, st *corev1.ContainerStatus) bool {
	if st.State.Running == nil {
		return false
	}
	if spec.StartupProbe == nil {
		return true
	}
	if in.Probes != nil {
		if ok, known := in.Probes.Startup(trimID(st.ContainerID)); known {
			return ok
		}
	}
	return keptAcrossRestart(in, st, func(o corev1.ContainerStatus) bool { return o.Started != nil && *o.Started })
}

// keptAcrossRestart is kubelet's rule for a probe with no result yet
// (setReadyStateOnKubeletRestart): a container that was running before
// the agent started keeps what the previous status showed for the same
// instance; any other waits for its probe.
func keptAcrossRestart(in Input, st *corev1.ContainerStatus, was func(corev1.ContainerStatus) bool) bool {
	if in.Previous == nil || in.AgentStarted.IsZero() || !st.State.Running.StartedAt.Time.Before(in.AgentStarted) {
		return false
	}
	for _, list := range [][]corev1.ContainerStatus{in.Previous.ContainerStatuses, in.Previous.InitContainerStatuses} {
		for _, o := range list {
			if o.Name == st.Name && o.ContainerID == st.ContainerID {
				return was(o)
			}
		}
	}
	return false
}

func trimID(id string) string { return strings.TrimPrefix(id, ContainerIDPrefix) }

// convert is kubelet's convertContainerStatus for one runtime instance.
func convert(spec corev1.Container, c runtime.ContainerStatus, old *corev1.ContainerStatus) corev1.ContainerStatus {
	id := ContainerIDPrefix + c.ID
	st := corev1.ContainerStatus{
		Name:         c.Name,
		RestartCount: c.Attempt,
		Image:        spec.Image,
		ImageID:      c.Image.ID,
		ContainerID:  id,
	}
	switch {
	case c.State == runtime.ContainerRunning:
		st.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}
	case c.State == runtime.ContainerCreated:
		st.State.Waiting = &corev1.ContainerStateWaiting{}
	case c.State == runtime.ContainerExited:
		started := c.StartedAt
		if started.IsZero() {
			// The CRI reports a never-started container's startedAt as 0.
			started = time.Unix(0, 0).UTC()
		}
		st.State.Terminated = &corev1.ContainerStateTerminated{
			ExitCode:    c.ExitCode,
			Reason:      terminatedReason(c),
			Message:     c.Message,
			StartedAt:   metav1.NewTime(started),
			FinishedAt:  metav1.NewTime(c.FinishedAt),
			ContainerID: id,
		}
	case c.State == runtime.ContainerUnknown && old != nil && old.State.Running != nil:
		st.State.Terminated = &corev1.ContainerStateTerminated{
			Reason:   ReasonContainerStatusUnknown,
			Message:  "The container could not be located when the pod was terminated",
			ExitCode: 137,
		}
		st.RestartCount = old.RestartCount + 1
	default:
		st.State.Waiting = &corev1.ContainerStateWaiting{}
	}
	return st
}

// terminatedReason is what containerd's CRI reports: OOMKilled when the OOM
// killer struck, the runtime's own reason (StartError), else Completed or
// Error by exit code.
func terminatedReason(c runtime.ContainerStatus) string {
	switch {
	case c.OOMKilled:
		return ReasonOOMKilled
	case c.Reason != "":
		return c.Reason
	case c.ExitCode == 0:
		return ReasonCompleted
	}
	return ReasonError
}

// newestTwo groups instances by container name, newest first, at most two
// each (the current state and the last termination).
func newestTwo(all []runtime.ContainerStatus) map[string][]runtime.ContainerStatus {
	sorted := slices.Clone(all)
	slices.SortStableFunc(sorted, func(a, b runtime.ContainerStatus) int {
		switch {
		case newer(&a, &b):
			return -1
		case newer(&b, &a):
			return 1
		}
		return 0
	})
	out := map[string][]runtime.ContainerStatus{}
	for _, c := range sorted {
		if len(out[c.Name]) < 2 {
			out[c.Name] = append(out[c.Name], c)
		}
	}
	return out
}
