package podagent

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/lifecycle"
	"github.com/podboot/podboot/agent/metrics"
	"github.com/podboot/podboot/agent/probe"
	"github.com/podboot/podboot/agent/prober"
	"github.com/podboot/podboot/agent/reconcile"
	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	"github.com/podboot/podboot/agent/store"
)

// newProber makes the probe manager over the containerd runtime: exec
// probes run in the containers, network probes dial the pod's IP (or its
// loopback when it has none); a changed result wakes the pod's worker
// through wake, and prober_probe_total goes to /metrics.
func newProber(ctx context.Context, ctrd *ctrdruntime.Runtime, recorder *store.Recorder, agentMetrics *metrics.Metrics, wake func(types.UID), log *slog.Logger) *prober.Manager {
	cfg := prober.Config{
		Prober:  podProber{p: &probe.Prober{Exec: ctrd, UserAgent: probe.UserAgent("probe", KubernetesVersion)}, ctrd: ctrd},
		Events:  recorder,
		Changed: wake,
		Log:     log,
	}
	if agentMetrics != nil {
		cfg.Registerer = agentMetrics.Registry()
	}
	return prober.NewManager(ctx, cfg)
}

// podProber runs a probe against the pod's IP, or, for a pod without one
// (a node without a pod network), against 127.0.0.1 inside the pod's
// network namespace, which is where kubelet's probe would land through the
// pod's address.
type podProber struct {
	p    *probe.Prober
	ctrd *ctrdruntime.Runtime
}

func (pp podProber) Probe(ctx context.Context, h *corev1.ProbeHandler, t probe.Target, timeout time.Duration) (probe.Result, string, error) {
	p, t, err := inPod(pp.p, pp.ctrd, h.Exec == nil, t)
	if err != nil {
		return probe.Unknown, "", err
	}
	return p.Probe(ctx, h, t, timeout)
}

// inPod is p for target t: as it is when the pod has an address (or the
// handler dials nothing), else with a dialer into the pod's namespace
// and the pod's loopback as the default host.
func inPod(p *probe.Prober, ctrd *ctrdruntime.Runtime, dials bool, t probe.Target) (*probe.Prober, probe.Target, error) {
	if !dials || t.PodIP != "" || t.Pod == nil {
		return p, t, nil
	}
	dial, err := ctrd.PodDialer(t.Pod.UID)
	if err != nil {
		return nil, t, err
	}
	pc := *p
	pc.Dial = dial
	t.PodIP = "127.0.0.1"
	return &pc, t, nil
}

// proberResults is the probe manager as the pod workers see it.
type proberResults struct{ m *prober.Manager }

var _ reconcile.Probes = proberResults{}

func (r proberResults) UpdatePod(pod *corev1.Pod, status *corev1.PodStatus) {
	r.m.UpdatePod(pod, status)
}

func (r proberResults) RemovePod(uid types.UID) { r.m.RemovePod(uid) }

func (r proberResults) LivenessFailed(id string) bool {
	res, ok := r.m.Liveness(id)
	return ok && res == prober.Failure
}

func (r proberResults) StartupFailed(id string) bool {
	res, ok := r.m.Startup(id)
	return ok && res == prober.Failure
}

// Startup and Readiness: a result that is still unknown (the startup
// probe's initial value) is none yet.
func (r proberResults) Startup(id string) (bool, bool) {
	res, ok := r.m.Startup(id)
	return res == prober.Success, ok && res != prober.Unknown
}

func (r proberResults) Readiness(id string) (bool, bool) {
	res, ok := r.m.Readiness(id)
	return res == prober.Success, ok && res != prober.Unknown
}

// hookRunner runs lifecycle hooks as the pod workers ask.
type hookRunner struct {
	r    *lifecycle.Runner
	ctrd *ctrdruntime.Runtime
}

func newHookRunner(ctrd *ctrdruntime.Runtime, recorder *store.Recorder) hookRunner {
	return hookRunner{r: &lifecycle.Runner{Exec: ctrd, UserAgent: probe.UserAgent("lifecycle", KubernetesVersion), Events: recorder}, ctrd: ctrd}
}

func (h hookRunner) RunHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, handler *corev1.LifecycleHandler) (string, error) {
	t := probe.Target{Pod: pod, Container: c, ContainerID: id, PodIP: podIP}
	r := h.r
	if handler.HTTPGet != nil && podIP == "" {
		p, tt, err := inPod(&probe.Prober{}, h.ctrd, true, t)
		if err != nil {
			return err.Error(), err
		}
		rc := *h.r
		rc.Dial, t = p.Dial, tt
		r = &rc
	}
	return r.Run(ctx, handler, t)
}
