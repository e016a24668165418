package reconcile

import (
	"context"
	"os"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/podstatus"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/netsetup/poddns"
)

// sync is one pass of the pod worker (kubelet's SyncPod /
// SyncTerminatingPod): observe, act, publish. It reports whether the pod is
// gone (terminated and cleaned up, or stopped for shutdown).
func (w *worker) sync(ctx context.Context) bool {
	log := w.m.cfg.Log.With("pod", w.ref.String())
	pod, shutdown := w.currentPod()
	snap, err := w.observe(ctx)
	if err != nil {
		log.Warn("sync pod: observe runtime", "err", err)
		return false
	}
	now := w.m.cfg.Now()
	a := ComputeActions(pod, snap.sandbox, snap.containers, w.probeResults(), w.m.crash, now)
	w.retryAt = a.RetryAt

	if pod.DeletionTimestamp != nil {
		w.publish(pod, snap, false) // terminating, before the kill
		if len(a.Kill) > 0 {
			killCtx, release := w.killContext(ctx, *pod.DeletionGracePeriodSeconds)
			w.kill(killCtx, pod, snap.containers, a.Kill, a.Killing, a.KillGrace, nil)
			release()
			if snap, err = w.observe(ctx); err != nil {
				log.Warn("sync pod: observe runtime", "err", err)
				return false
			}
			a = ComputeActions(pod, snap.sandbox, snap.containers, w.probeResults(), w.m.crash, w.m.cfg.Now())
		}
		if !a.Cleanup {
			w.publish(pod, snap, false)
			return false
		}
		if shutdown {
			w.publish(pod, snap, false)
			w.forgetProbes()
			w.m.saveState()
			return true
		}
		if err := w.cleanup(ctx, snap); err != nil {
			log.Warn("sync pod: clean up", "err", err)
			return false
		}
		if w.pod != nil {
			w.m.cfg.Pods.RemovePod(w.ref.Namespace, w.ref.Name, w.uid)
		}
		w.forgetProbes()
		w.m.state.forgetPod(w.uid)
		w.m.saveState()
		return true
	}

	if ev := w.eviction(); ev != nil {
		w.syncEvicted(ctx, pod, snap, ev)
		return false
	}
	if w.rejection != nil {
		// Refused at admission: shown Failed, never started. Kubelet
		// records the refusal as a Warning event with its reason.
		if w.previous == nil || w.previous.Reason != w.rejection.Reason {
			w.m.cfg.Events.Eventf(pod, corev1.EventTypeWarning, w.rejection.Reason, "%s", w.rejection.Message)
		}
		w.publish(pod, snap, false)
		return false
	}
	// Publish what is known before any slow step (kubelet shows a new pod
	// Pending/ContainerCreating at once), then after each step.
	w.publish(pod, snap, false)
	if w.execute(ctx, pod, &snap, a) {
		// A sidecar started: the next init container, or the app
		// containers, may start now, and no runtime event will say so.
		w.wakeUp()
	}
	// Relist only when something was done: an idle pod costs one list.
	if a.CreateSandbox || len(a.Kill)+len(a.Remove)+len(a.Start) > 0 {
		if snap2, err := w.observe(ctx); err == nil {
			snap = snap2
		} else {
			log.Warn("sync pod: observe runtime", "err", err)
		}
	}
	w.publish(pod, snap, a.Finished)
	w.m.saveState()
	return false
}

// observe returns this pod's containers from the shared cache (relisting
// only when the pod is stale).
func (w *worker) observe(ctx context.Context) (podSnapshot, error) {
	p, err := w.m.cache.get(ctx, w.uid)
	if err != nil {
		return podSnapshot{}, err
	}
	p.ref = w.ref
	w.setFingerprint(p.fingerprint())
	return p, nil
}

// execute carries out the actions of a pod that should run.
// Each step that changes what the pod shows updates snap and republishes.
// It reports whether a sidecar was started and runs.
func (w *worker) execute(ctx context.Context, pod *corev1.Pod, snap *podSnapshot, a Actions) (sidecarStarted bool) {
	log := w.m.cfg.Log.With("pod", w.ref.String())
	rt := w.m.cfg.Runtime
	if len(a.Kill) > 0 {
		w.kill(ctx, pod, snap.containers, a.Kill, a.Killing, a.KillGrace, nil)
		// The killed instances' ends are known only to a list: the
		// statuses published with their successors (a liveness restart)
		// show them terminated, never still running.
		// A list that fails (a loaded node: one container's task did not
		// answer in time) leaves the successors to the next sync rather
		// than publish them beside a killed instance still shown running.
		s, err := w.observe(ctx)
		if err != nil {
			log.Warn("sync pod: observe runtime after a kill", "err", err)
			w.syncFailed()
			return false
		}
		*snap = s
	}
	for _, id := range a.Remove {
		if err := rt.RemoveContainer(ctx, id); err != nil {
			log.Warn("remove old container instance", "container", id, "err", err)
			continue
		}
		w.m.cache.update(w.uid, w.ref, func(p *podSnapshot) { p.removeContainer(id) })
	}
	sandbox := snap.sandbox
	createSandbox := a.CreateSandbox && len(a.Kill) == 0
	if (createSandbox || len(a.Start) > 0) && !w.setUpVolumes(pod) {
		return false
	}
	if createSandbox {
		cfg := sandboxConfig(pod)
		cfg.ResolvConf = w.resolvConf(pod)
		if cg := w.m.cfg.Cgroups; cg != nil {
			parent, err := cg.EnsurePod(pod)
			if err != nil {
				w.m.cfg.Events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodContainer", "unable to ensure pod container exists: %v", err)
				log.Warn("create pod cgroup", "err", err)
				w.syncFailed()
				return false
			}
			cfg.CgroupParent = parent
		}
		sb, err := rt.RunSandbox(ctx, cfg)
		if err != nil {
			w.m.cfg.Events.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			log.Warn("create pod sandbox", "err", err)
			w.syncFailed()
			return false
		}
		sandbox = &sb
		snap.sandbox = &sb
		w.m.cache.update(w.uid, w.ref, func(p *podSnapshot) { p.sandbox = &sb })
		w.publish(pod, *snap, false)
	}
	if sandbox == nil {
		return false
	}
	for _, b := range a.BackOff {
		w.m.cfg.Events.EventfOnField(pod, fieldPath(b.Container.Name, b.Init), corev1.EventTypeWarning, "BackOff",
			"Back-off restarting failed container %s in pod %s", b.Container.Name, FormatPod(pod))
		w.setWaiting(b.Container.Name, "CrashLoopBackOff", b.Message)
		w.syncFailed()
	}
	for _, s := range a.Start {
		if st, ok := w.start(ctx, pod, *sandbox, s); ok {
			snap.setContainer(st)
			w.m.cache.update(w.uid, w.ref, func(p *podSnapshot) { p.setContainer(st) })
			if s.Init && podstatus.IsRestartableInitContainer(&s.Container) && st.State == runtime.ContainerRunning {
				sidecarStarted = true
			}
		}
		w.publish(pod, *snap, false)
	}
	return sidecarStarted
}

// kill stops containers (kubelet's killContainersWithSyncResult): the
// regular containers concurrently, then the sidecars one by one in
// reverse spec order with what is left of the pod's grace (at least
// kubelet's minimum), so that sidecars outlive the containers they serve.
// Each is kubelet's killContainer: the Killing event, the preStop hook
// within the grace, then the stop signal with what is left of it (at
// least the minimum). A stop cut short by ctx (a shortened grace, the
// agent stopping) is not an error: the next sync stops what still runs.
// messages has the Killing event's message of a kill with a reason, and
// graces a kill's own grace in seconds (a failed probe's), by ID
// (Actions.Killing, Actions.KillGrace); override, when set, is the grace
// of every kill (an eviction's).
func (w *worker) kill(ctx context.Context, pod *corev1.Pod, observed []runtime.ContainerStatus, ids []string, messages map[string]string, graces map[string]int64, override *time.Duration) {
	if w.killed == nil {
		w.killed = map[string]bool{}
	}
	byID := map[string]runtime.ContainerStatus{}
	for _, c := range observed {
		byID[c.ID] = c
	}
	sidecarRank := map[string]int{} // name -> index among init containers
	for i := range pod.Spec.InitContainers {
		if podstatus.IsRestartableInitContainer(&pod.Spec.InitContainers[i]) {
			sidecarRank[pod.Spec.InitContainers[i].Name] = i
		}
	}
	var regular, sidecars []string
	for _, id := range ids {
		c := byID[id]
		if _, ok := sidecarRank[c.Name]; ok && c.Init {
			sidecars = append(sidecars, id)
		} else {
			regular = append(regular, id)
		}
	}
	slices.SortFunc(sidecars, func(a, b string) int { return sidecarRank[byID[b].Name] - sidecarRank[byID[a].Name] })

	podGrace := time.Duration(rawGracePeriod(pod)) * time.Second
	graceOf := func(id string) time.Duration {
		switch g, ok := graces[id]; {
		case override != nil:
			return *override
		case ok:
			return time.Duration(g) * time.Second
		}
		return podGrace
	}
	deadline := time.Now().Add(podGrace)
	var wg sync.WaitGroup
	// An eviction's override is its grace exactly (none), as before
	// probes; every other kill gets at least kubelet's minimum.
	minimum := minimumGracePeriodSeconds * time.Second
	if override != nil {
		minimum = *override
	}
	for _, id := range regular {
		wg.Go(func() { w.killContainer(ctx, pod, byID[id], messages, graceOf(id), minimum) })
	}
	wg.Wait()
	for _, id := range sidecars {
		grace := graceOf(id)
		if _, own := graces[id]; override == nil && !own {
			grace = time.Until(deadline)
		}
		w.killContainer(ctx, pod, byID[id], messages, grace, minimum)
	}
	// Exit codes and times are known only to a list.
	w.m.cache.markStale(w.uid)
}

// killContainer is kubelet's killContainer for one instance: the Killing
// event (once per instance: a stop cut short is retried), the preStop
// hook if there is time for it, then the stop with what is left of grace,
// never under minimum.
func (w *worker) killContainer(ctx context.Context, pod *corev1.Pod, c runtime.ContainerStatus, messages map[string]string, grace, minimum time.Duration) {
	w.killMu.Lock()
	first := !w.killed[c.ID]
	w.killed[c.ID] = true
	w.killMu.Unlock()
	if first && w.pod != nil {
		msg, ok := messages[c.ID]
		if !ok {
			msg = "Stopping container " + c.Name
		}
		w.m.cfg.Events.EventfOnField(pod, fieldPath(c.Name, c.Init), corev1.EventTypeNormal, "Killing", "%s", msg)
	}
	if spec := containerSpec(pod, c.Name, c.Init); first && spec != nil && grace > 0 && c.State == runtime.ContainerRunning &&
		spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && w.m.cfg.Hooks != nil {
		grace -= w.preStop(ctx, pod, spec, c.ID, grace)
	}
	grace = max(grace, minimum)
	if err := w.m.cfg.Runtime.StopContainer(ctx, c.ID, grace); err != nil && ctx.Err() == nil {
		w.m.cfg.Log.Warn("stop container", "pod", w.ref.String(), "container", c.Name, "id", c.ID, "err", err)
	}
}

// preStop is kubelet's executePreStopHook: the hook runs until it ends or
// grace runs out (it is then abandoned: its exec is killed), and a
// failure is a FailedPreStopHook event without the message (kubelet keeps
// secrets out of events). It returns how long it took.
func (w *worker) preStop(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, id string, grace time.Duration) time.Duration {
	start := time.Now()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	msg, err := w.m.cfg.Hooks.RunHook(hctx, pod, spec, id, w.podIP(), spec.Lifecycle.PreStop)
	if err != nil && hctx.Err() == nil {
		w.m.cfg.Log.Warn("preStop hook failed", "pod", w.ref.String(), "container", spec.Name, "err", err, "message", msg)
		w.m.cfg.Events.EventfOnField(pod, fieldPath(spec.Name, isInit(pod, spec)), corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed")
	}
	return time.Since(start)
}

// isInit reports whether spec is one of pod's init containers.
func isInit(pod *corev1.Pod, spec *corev1.Container) bool {
	for i := range pod.Spec.InitContainers {
		if &pod.Spec.InitContainers[i] == spec {
			return true
		}
	}
	return false
}

// cleanup removes a terminated pod's containers, sandbox, cgroup,
// directory (its volumes) and logs.
func (w *worker) cleanup(ctx context.Context, snap podSnapshot) error {
	for _, c := range snap.containers {
		if err := w.m.cfg.Runtime.RemoveContainer(ctx, c.ID); err != nil {
			return err
		}
		w.m.cache.update(w.uid, w.ref, func(p *podSnapshot) { p.removeContainer(c.ID) })
	}
	if snap.sandbox != nil {
		if err := w.m.cfg.Runtime.RemoveSandbox(ctx, w.ref); err != nil {
			return err
		}
		w.m.cache.update(w.uid, w.ref, func(p *podSnapshot) { p.sandbox = nil })
	}
	if cg := w.m.cfg.Cgroups; cg != nil {
		if err := cg.RemovePod(w.uid); err != nil {
			return err
		}
	}
	if err := w.removeVolumes(); err != nil {
		return err
	}
	return w.removeLogs()
}

func (w *worker) setWaiting(name, reason, message string) {
	if w.waiting == nil {
		w.waiting = map[string]podstatus.Waiting{}
	}
	w.waiting[name] = podstatus.Waiting{Reason: reason, Message: message}
}

func fieldPath(container string, init bool) string {
	if init {
		return "spec.initContainers{" + container + "}"
	}
	return "spec.containers{" + container + "}"
}

// sandboxConfig is the sandbox kubelet would ask for: hostname from
// spec.hostname, else the pod name, at most 63 characters; the domain of a
// pod with a subdomain; hostAliases.
func sandboxConfig(pod *corev1.Pod) runtime.SandboxConfig {
	hostname, domain := poddns.Hostname(pod)
	return runtime.SandboxConfig{
		Pod:         runtime.PodRef{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name},
		Hostname:    hostname,
		HostNetwork: pod.Spec.HostNetwork,
		HostIPC:     pod.Spec.HostIPC,
		Domain:      domain,
		HostAliases: pod.Spec.HostAliases,
		HostPorts:   hostPorts(pod),
	}
}

// hostPorts are the ports of the pod's containers (sidecars included)
// that ask for a hostPort.
func hostPorts(pod *corev1.Pod) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// resolvConf is the pod's resolv.conf from the node's (kubelet's
// GetPodDNS), with kubelet's Warning events for what it had to change; nil
// when the agent manages no resolver file.
func (w *worker) resolvConf(pod *corev1.Pod) []byte {
	path := w.m.cfg.ResolvConf
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// kubelet too goes on with an empty base when the file is missing.
		w.m.cfg.Log.Warn("read the node's resolv.conf", "path", path, "err", err)
	}
	c, warnings := poddns.PodResolvConf(pod, poddns.Node{ResolvConf: poddns.ParseResolvConf(b), InCluster: w.m.cfg.InCluster})
	for _, wn := range warnings {
		w.m.cfg.Events.Eventf(pod, corev1.EventTypeWarning, wn.Reason, "%s", wn.Message)
	}
	return c.Bytes()
}
