package podagent

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/api"
	"github.com/podboot/podboot/agent/manifest"
	"github.com/podboot/podboot/agent/metrics"
	"github.com/podboot/podboot/agent/ota"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/internal/device"
)

// otaDir is the OTA generations' place on the flash.
const otaDir = "ota"

// OTARolledBackCondition is the node condition that shows a rollback
// (True) until the next generation commits (False), as node-problem-
// detector's conditions show a problem.
const OTARolledBackCondition corev1.NodeConditionType = "OTARolledBack"

// newOTA opens the OTA state on the flash (recovering from a power cut)
// and starts the generation it says runs, before the pods start, so the
// first Set the pod manager applies already holds the fleet's pods: an
// agent that restarts never stops and restarts them. It returns nil (and
// logs why) when the state cannot be opened: the board's own pods run
// regardless.
func newOTA(ctx context.Context, cfg Config, dev device.Device, st *store.Store, rec *store.Recorder, pods *podManager, nr *nodeRuntime, m *metrics.Metrics, log *slog.Logger) *ota.Controller {
	log = log.With("component", "ota")
	target := &fleetTarget{pods: pods, nr: nr, st: st, opts: manifest.Options{NodeName: cfg.NodeName}, log: log}
	var om *ota.Metrics
	if m != nil {
		om = ota.NewMetrics(m.Registry())
	}
	node := nr.node
	c, err := ota.New(ota.Config{
		Dir:          filepath.Join(cfg.FlashDir, otaDir),
		Device:       dev.OTA,
		Target:       target,
		ClockTrusted: ota.ClockSynced,
		Event: func(eventType, reason, message string) {
			rec.Eventf(node, eventType, reason, "%s", message)
		},
		Condition: func(rolledBack bool, reason, message string) {
			status := corev1.ConditionFalse
			if rolledBack {
				status = corev1.ConditionTrue
			}
			cond := corev1.NodeCondition{Type: OTARolledBackCondition, Status: status, Reason: reason, Message: message}
			if err := setNodeConditions(st, cfg.NodeName, []corev1.NodeCondition{cond}, time.Now()); err != nil {
				log.Warn("set the node's OTA condition", "err", err)
			}
		},
		Metrics: om,
		Log:     log,
	})
	if err != nil {
		log.Error("OTA off: the board's own pods run, no generation does", "err", err)
		return nil
	}
	gen, dir, err := c.Boot(ctx)
	if err != nil {
		log.Error("start the OTA generation", "generation", gen, "err", err)
	}
	if dir != "" {
		// Its images import with the flash's at boot, behind the same gate.
		nr.addBootImages(filepath.Join(dir, "images"))
	}
	return c
}

// fleetTarget is the controller's Target: the fleet's pods in the pod
// manager, their images in containerd, their health in the store.
type fleetTarget struct {
	pods *podManager
	nr   *nodeRuntime
	st   *store.Store
	opts manifest.Options
	log  *slog.Logger

	mu    sync.Mutex
	fleet *manifest.Set // what Run last set
}

func (t *fleetTarget) read(dir string) (*manifest.Set, error) {
	set, err := manifest.ReadDir(filepath.Join(dir, "pods"), t.opts)
	if err != nil {
		return nil, err
	}
	if len(set.Errors) > 0 {
		msgs := make([]string, 0, len(set.Errors))
		for _, e := range set.Errors {
			msgs = append(msgs, e.Error())
		}
		return nil, &ota.InvalidManifestError{Message: "its manifests have errors: " + strings.Join(msgs, "; ")}
	}
	for _, p := range set.Pods {
		p.UID = fleetUID(p)
	}
	return set, nil
}

// fleetUID is a fleet pod's UID: the static-pod UID with its images
// hashed in. The board's own pods keep theirs without the images, so
// that kubectl set image restarts a container in place, as an API pod
// update does; a generation is replaced as a whole instead, as kubelet
// replaces a changed static pod: a pod whose image changed is a new pod
// under a new UID, and the health gate judges it, not the old one
// restarting in place (which it would take for a crash). An unchanged pod
// keeps its UID from one generation to the next and is not restarted.
func fleetUID(p *corev1.Pod) types.UID {
	h := md5.New()
	fmt.Fprintf(h, "fleet:%s", p.UID)
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			fmt.Fprintf(h, "\x00%s=%s", c.Name, c.Image)
		}
	}
	return manifest.UIDFromMD5(h.Sum(nil))
}

// Check refuses a generation with a bad manifest or an object the board's
// own manifests define too (they stay the board's).
func (t *fleetTarget) Check(dir string) error {
	set, err := t.read(dir)
	if err != nil {
		return err
	}
	if own := t.pods.Own(); own != nil {
		if keys := manifest.Collisions(own, set); len(keys) > 0 {
			names := make([]string, 0, len(keys))
			for _, k := range keys {
				names = append(names, k.String())
			}
			return &ota.CollisionError{Message: fmt.Sprintf("it defines %s, which the board's own manifests in pods/ define", strings.Join(names, ", "))}
		}
	}
	return nil
}

// Import imports the generation's image archives now, one by one; the
// first that fails refuses the generation.
func (t *fleetTarget) Import(ctx context.Context, dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "images"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isArchive(e.Name()) {
			continue
		}
		path := filepath.Join(dir, "images", e.Name())
		start := time.Now()
		refs, err := t.nr.ctrd.ImportArchive(ctx, path)
		if err != nil {
			return fmt.Errorf("image archive %s: %w", e.Name(), err)
		}
		t.log.Info("imported image archive", "file", path, "images", refs, "duration", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Run makes the generation's pods the fleet's.
func (t *fleetTarget) Run(gen uint64, dir string) error {
	var set *manifest.Set
	if dir != "" {
		var err error
		if set, err = t.read(dir); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.fleet = set
	t.mu.Unlock()
	t.pods.SetFleet(set, gen)
	return nil
}

// Health is each fleet pod's state in the store; a pod of an older
// generation under the same name (another UID) is not it yet.
func (t *fleetTarget) Health() []ota.PodHealth {
	t.mu.Lock()
	set := t.fleet
	t.mu.Unlock()
	if set == nil {
		return nil
	}
	// A pod the board's own manifests took over (a file added by hand
	// during the trial) runs as the board's: it does not judge the fleet.
	own := map[manifest.ObjectKey]bool{}
	if o := t.pods.Own(); o != nil {
		for _, k := range manifest.Collisions(o, set) {
			own[k] = true
		}
	}
	out := make([]ota.PodHealth, 0, len(set.Pods))
	for _, want := range set.Pods {
		if own[manifest.ObjectKey{Kind: "Pod", Namespace: want.Namespace, Name: want.Name}] {
			continue
		}
		h := ota.PodHealth{Namespace: want.Namespace, Name: want.Name}
		obj, ok := t.st.Get(store.KindPod, want.Namespace, want.Name)
		if pod, isPod := obj.(*corev1.Pod); ok && isPod && pod.UID == want.UID {
			h = podHealth(pod)
		}
		out = append(out, h)
	}
	return out
}

func podHealth(pod *corev1.Pod) ota.PodHealth {
	h := ota.PodHealth{Namespace: pod.Namespace, Name: pod.Name, Present: true,
		Succeeded: pod.Status.Phase == corev1.PodSucceeded, Failed: pod.Status.Phase == corev1.PodFailed}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			h.Ready = true
		}
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		h.Restarts += cs.RestartCount
		noteReason(&h, cs)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		h.Restarts += cs.RestartCount
		noteReason(&h, cs)
		if h.Succeeded {
			continue
		}
		// The pod's condition may lag its containers: a container that is
		// not running and ready makes the pod not ready for the gate.
		if !cs.Ready || cs.State.Running == nil {
			h.Ready = false
		}
		if exited(pod.Spec.RestartPolicy, cs) && h.Exited == "" {
			h.Exited = fmt.Sprintf("container %s exited%s", cs.Name, exitCause(cs))
		}
	}
	if h.Reason == "" && !h.Ready && !h.Succeeded {
		h.Reason = string(pod.Status.Phase)
		if pod.Status.Reason != "" {
			h.Reason = pod.Status.Reason
		}
	}
	return h
}

// noteReason keeps the first waiting or terminated reason of the pod's
// containers, for the rollback's message.
func noteReason(h *ota.PodHealth, cs corev1.ContainerStatus) {
	switch {
	case h.Reason != "":
	case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
		h.Reason = cs.State.Waiting.Reason
	case cs.State.Terminated != nil && cs.State.Terminated.Reason != "" && !h.Succeeded:
		h.Reason = cs.State.Terminated.Reason
	}
}

// exited says whether a container stopped in a way its pod does not
// expect: any stop under restartPolicy Always, a failure under OnFailure,
// and a crash loop's back-off between the two.
func exited(policy corev1.RestartPolicy, cs corev1.ContainerStatus) bool {
	if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
		return true
	}
	t := cs.State.Terminated
	switch {
	case t == nil:
		return false
	case policy == corev1.RestartPolicyAlways:
		return true
	case policy == corev1.RestartPolicyOnFailure:
		return t.ExitCode != 0
	}
	return false
}

func exitCause(cs corev1.ContainerStatus) string {
	t := cs.State.Terminated
	if t == nil {
		t = cs.LastTerminationState.Terminated
	}
	if t == nil {
		return ""
	}
	return fmt.Sprintf(" (%s, exit code %d)", t.Reason, t.ExitCode)
}

// otaAPI adapts the controller to the API's view of it.
type otaAPI struct{ c *ota.Controller }

func (o otaAPI) Status() api.OTAStatus { return apiStatus(o.c.Status()) }

func (o otaAPI) Push(ctx context.Context, r io.Reader) (api.OTAStatus, error) {
	s, err := o.c.Push(ctx, r)
	return apiStatus(s), err
}

func (o otaAPI) Rollback(ctx context.Context) (api.OTAStatus, error) {
	s, err := o.c.Rollback(ctx)
	return apiStatus(s), err
}

func apiStatus(s ota.Status) api.OTAStatus {
	return api.OTAStatus(s)
}
