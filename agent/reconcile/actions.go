package reconcile

import (
	"fmt"
	"slices"
	"time"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/backoff"
	"github.com/podboot/podboot/agent/podstatus"
	"github.com/podboot/podboot/agent/runtime"
)

// Actions is what one sync of a pod should do, kubelet's podActions.
type Actions struct {
	// CreateSandbox: the pod has no sandbox yet.
	CreateSandbox bool
	// Start lists the containers to start now, in order: the next init
	// container to run and the sidecars (restartable init containers) that
	// are not running, then, once the pod is initialized, app containers.
	Start []Start
	// BackOff lists containers that should start but are in
	// CrashLoopBackOff.
	BackOff []BackOff
	// Kill lists running (or unknown) instances to stop.
	Kill []string
	// Killing has, by instance ID, the message of kubelet's Killing event
	// for a kill with a reason, e.g. "Container web definition changed,
	// will be restarted"; the others are "Stopping container <name>".
	Killing map[string]string
	// KillGrace has, by instance ID, the grace in seconds of a kill for a
	// failed liveness or startup probe that sets its own
	// terminationGracePeriodSeconds (kubelet's setTerminationGracePeriod).
	KillGrace map[string]int64
	// KillPod: stop every container of the pod; set when the pod is being
	// deleted, and when it is finished.
	KillPod bool
	// Finished: no container of the pod will run again (restartPolicy
	// allows no more restarts, or an init container failed under Never).
	Finished bool
	// Remove lists old exited instances to delete: every instance but the
	// newest and the newest exited one of each container.
	Remove []string
	// Cleanup: the pod is being deleted and nothing runs any more; remove
	// its containers and sandbox and forget it.
	Cleanup bool
	// RetryAt is when the earliest backoff ends (zero: none).
	RetryAt time.Time
}

// Start is a container to start.
type Start struct {
	Container corev1.Container
	Init      bool
	// Attempt is the restart count of the new instance.
	Attempt int32
	// BackoffKey and LastFinished, when LastFinished is not zero, are the
	// crash-loop backoff entry and the finishedAt of the latest exited
	// instance: the executor records the restart with
	// backoff.Next(BackoffKey, LastFinished, now), as kubelet's doBackOff.
	BackoffKey   string
	LastFinished time.Time
}

// BackOff is a container waiting for its crash-loop backoff to end.
type BackOff struct {
	Container corev1.Container
	Init      bool
	// Message is kubelet's waiting message, e.g. "back-off 10s restarting
	// failed container=web pod=web_default(<uid>)".
	Message string
	Until   time.Time
}

// ProbeResults are the liveness and startup probes' latest results by
// runtime container ID, as a sync acts on them.
type ProbeResults interface {
	// LivenessFailed: the latest liveness result is a failure.
	LivenessFailed(containerID string) bool
	// StartupFailed: the latest startup result is a failure.
	StartupFailed(containerID string) bool
	// Startup: success, when ok (a result, not unknown).
	Startup(containerID string) (success, ok bool)
}

// probeVerdict is what a running container's liveness and startup results
// ask of the sync: nothing, or a kill with kubelet's message.
func probeVerdict(c *corev1.Container, id string, probes ProbeResults) (failed *corev1.Probe, what string) {
	if probes == nil {
		return nil, ""
	}
	if c.LivenessProbe != nil && probes.LivenessFailed(id) {
		return c.LivenessProbe, "liveness"
	}
	if c.StartupProbe != nil && probes.StartupFailed(id) {
		return c.StartupProbe, "startup"
	}
	return nil, ""
}

// ComputeActions decides what to do for pod given its sandbox (nil when
// none), the observed instances of its containers, their probes' results
// (nil: none) and the crash-loop backoff, at now. It reads bo but does not
// change it. A pod with a deletionTimestamp is terminated.
func ComputeActions(pod *corev1.Pod, sandbox *runtime.Sandbox, observed []runtime.ContainerStatus, probes ProbeResults, bo *backoff.Backoff, now time.Time) Actions {
	var a Actions
	a.Remove = oldInstances(observed)
	if pod.DeletionTimestamp != nil {
		a.KillPod = true
		a.Kill = live(observed)
		a.Cleanup = len(a.Kill) == 0
		return a
	}
	if sandbox == nil {
		a.CreateSandbox = true
		// Containers left without their sandbox cannot share its
		// namespaces: stop them; the restart policy decides afterwards.
		a.Kill = notExited(observed)
		if len(a.Kill) > 0 {
			return a
		}
	}

	if regularContainersDone(pod, observed) {
		// kubelet's KillPod for a finished pod: sidecars do not keep it
		// alive, they are stopped and not restarted.
		a.KillPod, a.Finished, a.CreateSandbox = true, true, false
		a.Kill = notExited(observed)
		return a
	}
	if !a.initActions(pod, observed, probes, bo, now) {
		if a.KillPod {
			// An init container failed under restartPolicy Never.
			a.Finished, a.CreateSandbox = true, false
			a.Kill = notExited(observed)
		}
		return a
	}

	keep, starts := 0, len(a.Start)
	for _, c := range pod.Spec.Containers {
		latest := podstatus.Latest(observed, c.Name)
		if latest != nil && latest.State == runtime.ContainerRunning {
			if imageChanged(c.Image, latest.Image) {
				// kubelet's containerChanged: restarted whatever the
				// restart policy, as the spec changed.
				a.restart(c, false, latest, fmt.Sprintf("Container %s definition changed, will be restarted", c.Name))
				continue
			}
			probe, what := probeVerdict(&c, latest.ID, probes)
			if probe == nil {
				keep++
				continue
			}
			// kubelet's computePodActions: a container that failed its
			// liveness or startup probe is killed, and started again
			// (through the crash-loop backoff) unless restartPolicy is
			// Never.
			msg := fmt.Sprintf("Container %s failed %s probe", c.Name, what)
			if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
				msg += ", will be restarted"
				a.startOrBackOff(pod, c, false, observed, bo, now)
			}
			a.killForProbe(pod, latest.ID, probe, msg)
			continue
		}
		if !podstatus.ShouldContainerBeRestarted(pod, latest) {
			continue
		}
		if latest != nil && latest.State == runtime.ContainerUnknown {
			a.Kill = append(a.Kill, latest.ID)
		}
		a.startOrBackOff(pod, c, false, observed, bo, now)
	}
	if keep == 0 && len(a.Start) == starts && len(a.BackOff) == 0 {
		// kubelet's KillPod stops every container as a pod's end, with
		// the pod's grace and no reason (a probe's kill included).
		a.KillPod, a.Finished, a.CreateSandbox = true, true, false
		a.Start, a.Kill, a.Killing, a.KillGrace = nil, notExited(observed), nil, nil
	}
	return a
}

// killForProbe kills a running instance that failed its liveness or
// startup probe, with the probe's own terminationGracePeriodSeconds when it
// has one (kubelet's setTerminationGracePeriod; a deletion's grace wins,
// but a terminating pod is never here).
func (a *Actions) killForProbe(pod *corev1.Pod, id string, probe *corev1.Probe, message string) {
	a.Kill = append(a.Kill, id)
	if a.Killing == nil {
		a.Killing = map[string]string{}
	}
	a.Killing[id] = message
	if probe.TerminationGracePeriodSeconds != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		if a.KillGrace == nil {
			a.KillGrace = map[string]int64{}
		}
		a.KillGrace[id] = *probe.TerminationGracePeriodSeconds
	}
}

// regularContainersDone reports whether every regular container has exited
// and none will be restarted: the pod is finished whatever its sidecars do.
func regularContainersDone(pod *corev1.Pod, observed []runtime.ContainerStatus) bool {
	for _, c := range pod.Spec.Containers {
		latest := podstatus.Latest(observed, c.Name)
		if latest == nil || latest.State != runtime.ContainerExited || podstatus.ShouldContainerBeRestarted(pod, latest) {
			return false
		}
	}
	return len(pod.Spec.Containers) > 0
}

// initActions is kubelet's computeInitContainerActions: it adds the init
// containers to start (the next one to run, and every sidecar that is not
// running) in spec order, and reports whether the pod is initialized. A
// sidecar counts as done once it runs and its startup probe, if any,
// succeeded; one that failed its startup or liveness probe is killed and
// started again. An init container that failed under restartPolicy Never
// sets KillPod.
func (a *Actions) initActions(pod *corev1.Pod, observed []runtime.ContainerStatus, probes ProbeResults, bo *backoff.Backoff, now time.Time) bool {
	inits := pod.Spec.InitContainers
	if len(inits) == 0 {
		return true
	}
	// A created or running app container means initialization happened,
	// even if the init instances are gone.
	initialized := false
	for _, c := range pod.Spec.Containers {
		if s := podstatus.Latest(observed, c.Name); s != nil && (s.State == runtime.ContainerCreated || s.State == runtime.ContainerRunning) {
			initialized = true
			break
		}
	}
	previouslyInitialized := initialized
	restartOnFailure := pod.Spec.RestartPolicy != corev1.RestartPolicyNever
	var toStart []int
	type restartInit struct {
		i       int
		running *runtime.ContainerStatus
	}
	var restarts []restartInit
	type probeKill struct {
		i     int
		id    string
		probe *corev1.Probe
		what  string
	}
	var probeKills []probeKill
	// Backwards, as completed init containers may have been removed: the
	// last one with an instance tells how far initialization got.
	for i := len(inits) - 1; i >= 0; i-- {
		c := &inits[i]
		sidecar := podstatus.IsRestartableInitContainer(c)
		s := podstatus.Latest(observed, c.Name)
		if s == nil {
			if previouslyInitialized && sidecar {
				toStart = append(toStart, i)
			}
			continue
		}
		if previouslyInitialized && !sidecar {
			continue // after initialization only sidecars are kept running
		}
		switch s.State {
		case runtime.ContainerCreated:
			toStart = append(toStart, i)
		case runtime.ContainerRunning:
			if !sidecar {
				break // wait for it to finish
			}
			if c.StartupProbe != nil {
				if probes == nil {
					break // no result will come
				}
				if ok, known := probes.Startup(s.ID); !known || !ok {
					// Wait for the startup probe; restart on its failure.
					if probes.StartupFailed(s.ID) {
						probeKills = append(probeKills, probeKill{i, s.ID, c.StartupProbe, "startup"})
					}
					break
				}
			}
			if i == len(inits)-1 {
				initialized = true
			} else if !previouslyInitialized {
				toStart = append(toStart, i+1)
			}
			if imageChanged(c.Image, s.Image) {
				// kubelet restarts a running sidecar whose
				// definition changed (its message says no more).
				restarts = append(restarts, restartInit{i, s})
				break
			}
			// A sidecar's liveness does not hold back the next init
			// container; a failure restarts it.
			if c.LivenessProbe != nil {
				if probes != nil && probes.LivenessFailed(s.ID) {
					probeKills = append(probeKills, probeKill{i, s.ID, c.LivenessProbe, "liveness"})
				}
			}
		case runtime.ContainerExited:
			switch {
			case sidecar:
				toStart = append(toStart, i)
			case podstatus.IsInitContainerFailed(s):
				if !restartOnFailure {
					a.KillPod = true
					return false
				}
				toStart = append(toStart, i)
			case i == len(inits)-1:
				initialized = true
			default:
				toStart = append(toStart, i+1)
			}
		default: // unknown: kill before restarting
			if !sidecar && !restartOnFailure {
				a.KillPod = true
				return false
			}
			a.Kill = append(a.Kill, s.ID)
			toStart = append(toStart, i)
		}
		previouslyInitialized = true
	}
	if !previouslyInitialized {
		toStart = append(toStart, 0)
	}
	for _, k := range probeKills {
		toStart = append(toStart, k.i)
		a.killForProbe(pod, k.id, k.probe, fmt.Sprintf("Init container %s failed %s probe", inits[k.i].Name, k.what))
	}
	slices.Sort(toStart)
	toStart = slices.Compact(toStart)
	for _, i := range toStart {
		a.startOrBackOff(pod, inits[i], true, observed, bo, now)
	}
	slices.Reverse(restarts)
	for _, r := range restarts {
		c := inits[r.i]
		a.restart(c, true, r.running, fmt.Sprintf("Init container %s definition changed", c.Name))
	}
	return initialized
}

// restart kills a running instance whose container changed and starts the
// container again at once, with the next attempt (restartCount + 1). No
// crash-loop backoff applies: kubelet's doBackOff looks at the latest
// instance, which was running, and records nothing.
func (a *Actions) restart(c corev1.Container, init bool, running *runtime.ContainerStatus, message string) {
	a.Kill = append(a.Kill, running.ID)
	if a.Killing == nil {
		a.Killing = map[string]string{}
	}
	a.Killing[running.ID] = message
	a.Start = append(a.Start, Start{Container: c, Init: init, Attempt: running.Attempt + 1})
}

// imageChanged reports whether a running instance runs another image than
// its container's spec names, kubelet's containerChanged (which hashes the
// container's name and image, the only fields an update may change). The
// runtime reports the image as normalized (busybox:1.36 runs as
// docker.io/library/busybox:1.36), so both are normalized before they are
// compared; an instance that does not say which image it runs is kept.
func imageChanged(spec string, running runtime.Image) bool {
	if running.Ref == "" || running.Ref == spec {
		return false
	}
	want, err1 := reference.ParseDockerRef(spec)
	have, err2 := reference.ParseDockerRef(running.Ref)
	if err1 != nil || err2 != nil {
		return true
	}
	return want.String() != have.String()
}

// startOrBackOff is kubelet's doBackOff: a container whose latest exited
// instance finished less than its backoff ago waits.
func (a *Actions) startOrBackOff(pod *corev1.Pod, c corev1.Container, init bool, observed []runtime.ContainerStatus, bo *backoff.Backoff, now time.Time) {
	s := Start{Container: c, Init: init, BackoffKey: backoff.ContainerKey(pod.UID, c.Name)}
	if latest := podstatus.Latest(observed, c.Name); latest != nil {
		s.Attempt = latest.Attempt + 1
	}
	if ex := latestExited(observed, c.Name); ex != nil {
		s.LastFinished = ex.FinishedAt
		if bo.IsInBackOffSince(s.BackoffKey, ex.FinishedAt, now) {
			d := bo.Get(s.BackoffKey)
			b := BackOff{Container: c, Init: init, Until: ex.FinishedAt.Add(d),
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", d, c.Name, FormatPod(pod))}
			a.BackOff = append(a.BackOff, b)
			if a.RetryAt.IsZero() || b.Until.Before(a.RetryAt) {
				a.RetryAt = b.Until
			}
			return
		}
	}
	a.Start = append(a.Start, s)
}

// FormatPod is kubelet's format.Pod: name_namespace(uid).
func FormatPod(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

func latestExited(observed []runtime.ContainerStatus, name string) *runtime.ContainerStatus {
	var out *runtime.ContainerStatus
	for i := range observed {
		c := &observed[i]
		if c.Name == name && c.State == runtime.ContainerExited && (out == nil || isNewer(c, out)) {
			out = c
		}
	}
	return out
}

func isNewer(a, b *runtime.ContainerStatus) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.Attempt > b.Attempt
}

func notExited(observed []runtime.ContainerStatus) []string {
	var ids []string
	for _, c := range observed {
		if c.State != runtime.ContainerExited {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// live returns the instances a terminating pod must stop: running, or
// unknown. A created instance that never started has nothing to stop,
// as kubelet's killPod kills only the running containers; the clean-up
// removes it (with its task, if it has one). Counting it kept a pod
// terminating for ever when its task was lost between create and start
// (a power cut of the node with its shims): a stop finds no task, and the
// instance stays created.
func live(observed []runtime.ContainerStatus) []string {
	var ids []string
	for _, c := range observed {
		if c.State == runtime.ContainerRunning || c.State == runtime.ContainerUnknown {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// oldInstances returns the exited instances that are neither the newest
// instance of their container nor its newest exited one.
func oldInstances(observed []runtime.ContainerStatus) []string {
	byName := map[string][]*runtime.ContainerStatus{}
	for i := range observed {
		c := &observed[i]
		byName[c.Name] = append(byName[c.Name], c)
	}
	var out []string
	for _, list := range byName {
		slices.SortFunc(list, func(a, b *runtime.ContainerStatus) int {
			switch {
			case isNewer(a, b):
				return -1
			case isNewer(b, a):
				return 1
			}
			return 0
		})
		keptExited := list[0].State == runtime.ContainerExited
		for _, c := range list[1:] {
			if c.State != runtime.ContainerExited {
				continue // never remove what may still run
			}
			if !keptExited {
				keptExited = true
				continue
			}
			out = append(out, c.ID)
		}
	}
	slices.Sort(out)
	return out
}
