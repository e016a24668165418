package prober

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/probe"
)

// Kubelet's defaults for a probe's timing fields (SetDefaults_Probe). The
// manifest package applies them already; a zero that reaches a worker
// anyway gets them too, as a zero period would stop the ticker from
// working at all.
const (
	defaultPeriodSeconds    = 10
	defaultTimeoutSeconds   = 1
	defaultSuccessThreshold = 1
	defaultFailureThreshold = 3
)

// restartGrace is kubelet's kubeletRestartGracePeriod: a container that
// started more than this before the manager was made was running before
// the agent restarted.
const restartGrace = 10 * time.Second

// worker is kubelet's worker (worker.go): it probes one container's probe
// of one type every period until its context ends, the pod is terminal,
// the container will not run again, or a terminating pod's liveness or
// startup probe is let go.
type worker struct {
	m         *Manager
	pp        *podProbes
	pod       *corev1.Pod // as the worker was made; the spec is read from it
	container corev1.Container
	init      bool // an init container (a restartable one: a sidecar)
	typ       Type
	spec      corev1.Probe // with the timing defaults applied
	fieldPath string
	log       *slog.Logger

	// initialValue is the result a new container starts with
	// (worker.go:112-125).
	initialValue Result

	cancel  context.CancelFunc
	done    chan struct{}
	trigger chan struct{} // kubelet's manualTriggerCh

	// Owned by the worker's goroutine.
	containerID string // the runtime ID of the container last seen
	lastResult  Result
	resultRun   int
	onHold      bool

	resultLabels   [3]prometheus.Labels // successful, failed, unknown
	durationLabels prometheus.Labels
}

func (m *Manager) newWorker(pp *podProbes, pod *corev1.Pod, c *corev1.Container, init bool, typ Type, spec *corev1.Probe) *worker {
	w := &worker{
		m: m, pp: pp, pod: pod, container: *c, init: init, typ: typ,
		spec:    withDefaults(spec),
		done:    make(chan struct{}),
		trigger: make(chan struct{}, 1),
	}
	w.log = m.log.With("probeType", typ, "pod", pod.Namespace+"/"+pod.Name, "podUID", pod.UID, "container", c.Name)
	w.fieldPath = fmt.Sprintf("spec.containers{%s}", c.Name)
	if init {
		w.fieldPath = fmt.Sprintf("spec.initContainers{%s}", c.Name)
	}
	switch typ {
	case Readiness:
		w.initialValue = Failure
	case Liveness:
		w.initialValue = Success
	case Startup:
		w.initialValue = Unknown
	}
	for i, r := range []string{probeResultSuccessful, probeResultFailed, probeResultUnknown} {
		w.resultLabels[i] = prometheus.Labels{
			"probe_type": string(typ), "result": r, "container": c.Name,
			"pod": pod.Name, "namespace": pod.Namespace, "pod_uid": string(pod.UID),
		}
	}
	w.durationLabels = prometheus.Labels{
		"probe_type": string(typ), "container": c.Name,
		"pod": pod.Name, "namespace": pod.Namespace,
	}
	return w
}

func withDefaults(p *corev1.Probe) corev1.Probe {
	s := *p
	if s.PeriodSeconds <= 0 {
		s.PeriodSeconds = defaultPeriodSeconds
	}
	if s.TimeoutSeconds <= 0 {
		s.TimeoutSeconds = defaultTimeoutSeconds
	}
	if s.SuccessThreshold <= 0 {
		s.SuccessThreshold = defaultSuccessThreshold
	}
	if s.FailureThreshold <= 0 {
		s.FailureThreshold = defaultFailureThreshold
	}
	return s
}

// run probes the container every period until doProbe says to stop or ctx
// ends (worker.go:158-202).
func (w *worker) run(ctx context.Context) {
	defer w.cleanup()
	period := time.Duration(w.spec.PeriodSeconds) * time.Second

	// Kubelet waits a random part of the period before the first probe,
	// but only while it started less than a period ago, so that the
	// probes of the pods it finds at start do not all run at once
	// (worker.go:162-167). Unlike kubelet's sleep, this wait ends with ctx.
	if period > time.Since(w.m.start) {
		t := time.NewTimer(time.Duration(w.m.rand() * float64(period)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}

	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for w.doProbe(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-w.trigger:
			// A manual run restarts the period from now (worker.go:194-199).
			ticker.Reset(period)
		}
	}
}

// cleanup drops the worker's result, its metric series and itself from
// the manager (worker.go:171-184).
func (w *worker) cleanup() {
	w.cancel()
	if w.containerID != "" {
		w.m.removeResult(w.typ, w.containerID)
	}
	if met := w.m.metrics; met != nil {
		for _, l := range w.resultLabels {
			met.results.Delete(l)
		}
		met.duration.Delete(w.durationLabels)
	}
	w.m.removeWorker(w)
	close(w.done)
	w.pp.wg.Done()
	w.m.wg.Done()
}

// doProbe probes the container once and records the result. It returns
// whether the worker should go on (worker.go:215-394).
func (w *worker) doProbe(ctx context.Context) (keepGoing bool) {
	// Kubelet eats a probe's panic and goes on (worker.go:216-217).
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("probe panicked", "panic", p)
			keepGoing = true
		}
	}()

	startTime := time.Now()
	view := w.m.view(w.pp)
	pod, status := view.pod, view.status
	log := w.log
	if status == nil {
		// The pod has no status yet (worker.go:221-226).
		return true
	}
	if status.phase == corev1.PodFailed || status.phase == corev1.PodSucceeded {
		log.Debug("pod is terminated, exiting probe worker", "phase", status.phase)
		return false
	}
	c, ok := status.containers[w.container.Name]
	if !ok {
		// Not created yet, or deleted: wait (worker.go:235-244).
		return true
	}

	if id := RuntimeID(c.id); id != w.containerID {
		if w.containerID != "" {
			w.m.removeResult(w.typ, w.containerID)
		}
		w.containerID = id
		// ChangeContainerStatusOnKubeletRestart is off by default in
		// v1.37, so a container that ran before the agent restarted keeps
		// no initial value, and a started sidecar's startup result is
		// seeded with Success (worker.go:257-281).
		isRestart := c.running && !c.startedAt.IsZero() && c.startedAt.Before(w.m.start.Add(-restartGrace))
		if w.init && w.typ == Startup && c.started {
			w.m.setResult(w.typ, pod.UID, w.containerID, Success)
		}
		if !isRestart {
			w.m.setResult(w.typ, pod.UID, w.containerID, w.initialValue)
		}
		// A new container: probe again (worker.go:286-287).
		w.onHold = false
	}
	if w.onHold {
		return true
	}

	if !c.running {
		log.Debug("non-running container probed")
		w.m.setResult(w.typ, pod.UID, w.containerID, Failure)
		// Go on only while the container may run again
		// (worker.go:295-314, ContainerRestartRules on as in v1.37).
		if !c.terminated {
			return true
		}
		return containerShouldRestart(&w.container, &pod.Spec, c.exitCode) ||
			allContainersRestarting(pod, status)
	}

	// A terminating pod's liveness and startup probes succeed and stop, so
	// that it shuts down quietly (worker.go:316-328).
	if pod.DeletionTimestamp != nil && (w.typ == Liveness || w.typ == Startup) {
		log.Debug("pod deletion requested, setting probe result to success")
		w.m.setResult(w.typ, pod.UID, w.containerID, Success)
		return false
	}

	// No probe during initialDelaySeconds, counted in whole seconds from
	// the container's start (worker.go:330-333).
	if int32(time.Since(c.startedAt).Seconds()) < w.spec.InitialDelaySeconds {
		return true
	}

	if c.started {
		// A started container's startup probe waits for the next
		// container (worker.go:335-340).
		if w.typ == Startup {
			return true
		}
	} else if w.typ != Startup {
		// Liveness and readiness wait for the startup probe
		// (worker.go:341-346).
		return true
	}

	result, err := w.probe(ctx, pod, status)
	if ctx.Err() != nil {
		// Stopped while probing: whatever the probe said is about a
		// container nobody asks about any more.
		return false
	}
	if err != nil {
		// The probe could not run: the result is thrown away
		// (worker.go:349-353).
		return true
	}

	if met := w.m.metrics; met != nil {
		switch result {
		case Success:
			met.results.With(w.resultLabels[0]).Inc()
			met.duration.With(w.durationLabels).Observe(time.Since(startTime).Seconds())
		case Failure:
			met.results.With(w.resultLabels[1]).Inc()
		default:
			met.results.With(w.resultLabels[2]).Inc()
			met.duration.With(w.durationLabels).Observe(time.Since(startTime).Seconds())
		}
	}

	if w.lastResult == result {
		w.resultRun++
	} else {
		w.lastResult = result
		w.resultRun = 1
	}
	// Below its threshold a result leaves the state as it is
	// (worker.go:373-377).
	if (result == Failure && w.resultRun < int(w.spec.FailureThreshold)) ||
		(result == Success && w.resultRun < int(w.spec.SuccessThreshold)) {
		return true
	}

	w.m.setResult(w.typ, pod.UID, w.containerID, result)

	if (w.typ == Liveness && result == Failure) || w.typ == Startup {
		// The container is to be restarted (or has started): no more
		// probes until a new container (worker.go:381-391).
		w.onHold = true
		w.resultRun = 0
	}
	return true
}

// maxProbeRetries is how many times kubelet runs a probe that errored
// (prober.go:42).
const maxProbeRetries = 3

// probe is kubelet's prober.probe (prober.go:84-135): it runs the probe,
// again while it errors, records the events and maps the outcome to a
// Result. A non-nil error is a probe that could not run.
func (w *worker) probe(ctx context.Context, pod *corev1.Pod, status *statusView) (Result, error) {
	t := probe.Target{
		Pod:         pod,
		Container:   &w.container,
		ContainerID: w.containerID,
		PodIP:       status.podIP,
	}
	timeout := time.Duration(w.spec.TimeoutSeconds) * time.Second
	var (
		res    probe.Result
		output string
		err    error
	)
	for range maxProbeRetries {
		res, output, err = w.m.cfg.Prober.Probe(ctx, &w.spec.ProbeHandler, t, timeout)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return Failure, ctx.Err()
	}
	log := w.log
	if err != nil {
		log.Info("probe errored", "probeResult", res, "err", err)
		w.event(pod, "Unhealthy", "%s probe errored and resulted in %s state: %s", w.typ, res, err)
		return Failure, err
	}
	switch res {
	case probe.Success:
		log.Debug("probe succeeded")
		return Success, nil
	case probe.Warning:
		w.event(pod, "ProbeWarning", "%s probe warning: %s", w.typ, output)
		log.Debug("probe succeeded with a warning", "output", output)
		return Success, nil
	case probe.Failure:
		log.Info("probe failed", "output", output)
		w.event(pod, "Unhealthy", "%s probe failed: %s", w.typ, output)
		return Failure, nil
	default:
		log.Info("probe result unknown without error", "probeResult", res)
		return Failure, nil
	}
}

// event records a Warning about the worker's container, on the field path
// kubelet's GenerateContainerRef gives it.
func (w *worker) event(pod *corev1.Pod, reason, format string, args ...any) {
	if w.m.cfg.Events == nil {
		return
	}
	w.m.cfg.Events.EventfOnField(pod, w.fieldPath, corev1.EventTypeWarning, reason, format, args...)
}

// containerShouldRestart is kubelet's podutil.ContainerShouldRestart with
// ContainerRestartRules and RestartAllContainersOnContainerExits on, their
// defaults in v1.37.
func containerShouldRestart(c *corev1.Container, spec *corev1.PodSpec, exitCode int32) bool {
	if c.RestartPolicy != nil {
		if rule, ok := matchingRestartRule(c, exitCode); ok {
			switch rule.Action {
			case corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleActionRestartAllContainers:
				return true
			}
		}
		switch *c.RestartPolicy {
		case corev1.ContainerRestartPolicyAlways:
			return true
		case corev1.ContainerRestartPolicyOnFailure:
			return exitCode != 0
		case corev1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch spec.RestartPolicy {
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	case corev1.RestartPolicyNever:
		return false
	default:
		return true
	}
}

// matchingRestartRule is kubelet's podutil.FindMatchingContainerRestartRule.
func matchingRestartRule(c *corev1.Container, exitCode int32) (corev1.ContainerRestartRule, bool) {
	for _, rule := range c.RestartPolicyRules {
		if rule.ExitCodes == nil {
			continue
		}
		matched := false
		for _, code := range rule.ExitCodes.Values {
			if code == exitCode {
				matched = true
			}
		}
		switch rule.ExitCodes.Operator {
		case corev1.ContainerRestartRuleOnExitCodesOpIn:
			if matched {
				return rule, true
			}
		case corev1.ContainerRestartRuleOnExitCodesOpNotIn:
			if !matched {
				return rule, true
			}
		}
	}
	return corev1.ContainerRestartRule{}, false
}

// allContainersRestarting is kubelet's ShouldAllContainersRestart on the
// published status alone: the AllContainersRestarting condition, or a
// terminated container whose rule restarts them all.
func allContainersRestarting(pod *corev1.Pod, status *statusView) bool {
	if status.allRestarting {
		return true
	}
	check := func(cs []corev1.Container) bool {
		for i := range cs {
			c, ok := status.containers[cs[i].Name]
			if !ok || !c.terminated {
				continue
			}
			if rule, ok := matchingRestartRule(&cs[i], c.exitCode); ok && rule.Action == corev1.ContainerRestartRuleActionRestartAllContainers {
				return true
			}
		}
		return false
	}
	return check(pod.Spec.InitContainers) || check(pod.Spec.Containers)
}
