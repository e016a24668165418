package fake

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// Runtime is an in-memory runtime.Runtime. The zero value is not usable;
// call New.
type Runtime struct {
	// Now is the clock for timestamps; time.Now, which is synthetic inside
	// a synctest bubble.
	Now func() time.Time

	mu         sync.Mutex
	images     map[string]runtime.Image // present locally
	pullable   map[string]runtime.Image
	pullErrors map[string]error
	// unreachable are the refs whose pull errors say no registry answered.
	unreachable map[string]bool
	sandboxes   map[types.UID]runtime.Sandbox
	// sandboxConfigs are what each sandbox was created with.
	sandboxConfigs map[types.UID]runtime.SandboxConfig
	sandboxErr     error
	containers     map[string]*container
	order          []string // container IDs in creation order
	nextID         int
	startErrors    map[string]string // container name -> start failure message
	createErrs     map[string]error  // container name -> creation failure
	ignoreTerm     map[string]bool   // container name -> ignores SIGTERM
	subscribers    []chan runtime.Event
	calls          []string
	listCost       time.Duration                     // per instance listed
	lists          int                               // ListContainers calls
	listed         int                               // instances they returned
	usage          map[string]runtime.ContainerStats // container ID -> usage (SetUsage)
}

type container struct {
	status runtime.ContainerStatus
	config runtime.ContainerConfig
}

// New returns an empty runtime.
func New() *Runtime {
	return &Runtime{
		Now:            time.Now,
		images:         map[string]runtime.Image{},
		pullable:       map[string]runtime.Image{},
		pullErrors:     map[string]error{},
		unreachable:    map[string]bool{},
		sandboxes:      map[types.UID]runtime.Sandbox{},
		sandboxConfigs: map[types.UID]runtime.SandboxConfig{},
		containers:     map[string]*container{},
		startErrors:    map[string]string{},
		createErrs:     map[string]error{},
		ignoreTerm:     map[string]bool{},
	}
}

var (
	_ runtime.Runtime     = (*Runtime)(nil)
	_ runtime.StatsReader = (*Runtime)(nil)
)

// ImageFor is the Image the fake returns for a reference.
func ImageFor(ref string) runtime.Image {
	return runtime.Image{Ref: ref, ID: ref + "@sha256:" + fmt.Sprintf("%064x", len(ref))}
}

// AddImage makes ref present locally.
func (r *Runtime) AddImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[ref] = ImageFor(ref)
}

// SetPullable makes ref available from a registry.
func (r *Runtime) SetPullable(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pullable[ref] = ImageFor(ref)
	delete(r.pullErrors, ref)
	delete(r.unreachable, ref)
}

// SetPullError makes pulls of ref fail with err, as from a registry that
// answered (nil clears it).
func (r *Runtime) SetPullError(ref string, err error) {
	r.setPullError(ref, err, false)
}

// SetRegistryUnreachable makes pulls of ref fail with err as when no
// registry answers (PullError.RegistryUnreachable; nil clears it).
func (r *Runtime) SetRegistryUnreachable(ref string, err error) {
	r.setPullError(ref, err, true)
}

func (r *Runtime) setPullError(ref string, err error, unreachable bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unreachable, ref)
	if err == nil {
		delete(r.pullErrors, ref)
		return
	}
	r.pullErrors[ref] = err
	if unreachable {
		r.unreachable[ref] = true
	}
}

// FailStart makes every start of containers named name fail after
// creation, with message (the instance remains, exited with StartError);
// an empty message clears it.
func (r *Runtime) FailStart(name, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if message == "" {
		delete(r.startErrors, name)
		return
	}
	r.startErrors[name] = message
}

// FailCreate makes every creation of containers named name fail with err
// (nil clears it).
func (r *Runtime) FailCreate(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.createErrs, name)
		return
	}
	r.createErrs[name] = err
}

// FailSandbox makes RunSandbox fail with err (nil clears it).
func (r *Runtime) FailSandbox(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sandboxErr = err
}

// IgnoreSIGTERM makes containers named name ignore the stop signal, so
// StopContainer waits out the grace period and kills them (exit 137).
func (r *Runtime) IgnoreSIGTERM(name string, ignore bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ignoreTerm[name] = ignore
}

// Calls returns the calls made so far, e.g. "StartContainer default/web/app attempt=0".
func (r *Runtime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *Runtime) record(format string, args ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

// EnsureImage implements runtime.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, image string, policy corev1.PullPolicy) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("EnsureImage %s %s", image, policy)
	img, present := r.images[image]
	if policy == corev1.PullNever {
		if !present {
			return runtime.Image{}, fmt.Errorf("ensure image %q: %w", image, runtime.ErrImageNeverPull)
		}
		return img, nil
	}
	if present && policy != corev1.PullAlways {
		return img, nil
	}
	if err, ok := r.pullErrors[image]; ok {
		return runtime.Image{}, &runtime.PullError{Image: image, Err: err, RegistryUnreachable: r.unreachable[image]}
	}
	img, ok := r.pullable[image]
	if !ok {
		return runtime.Image{}, &runtime.PullError{Image: image, Err: fmt.Errorf("%s: not found", image)}
	}
	r.images[image] = img
	return img, nil
}

// RunSandbox implements runtime.Runtime.
func (r *Runtime) RunSandbox(ctx context.Context, cfg runtime.SandboxConfig) (runtime.Sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("RunSandbox %s/%s hostname=%s", cfg.Pod.Namespace, cfg.Pod.Name, cfg.Hostname)
	if r.sandboxErr != nil {
		return runtime.Sandbox{}, fmt.Errorf("run sandbox for pod %s: %w", cfg.Pod, r.sandboxErr)
	}
	if sb, ok := r.sandboxes[cfg.Pod.UID]; ok {
		return sb, nil
	}
	sb := runtime.Sandbox{Pod: cfg.Pod, Hostname: cfg.Hostname, CgroupParent: cfg.CgroupParent, CreatedAt: r.Now()}
	if !cfg.HostNetwork {
		sb.NetNS = "/run/netns/" + string(cfg.Pod.UID)
		sb.IP = fmt.Sprintf("10.88.0.%d", len(r.sandboxes)+2)
	}
	if !cfg.HostIPC {
		sb.IPCNS = "/run/ipcns/" + string(cfg.Pod.UID)
	}
	if !cfg.HostNetwork {
		sb.UTSNS = "/run/utsns/" + string(cfg.Pod.UID)
	}
	r.sandboxes[cfg.Pod.UID] = sb
	r.sandboxConfigs[cfg.Pod.UID] = cfg
	return sb, nil
}

// SandboxConfig returns what the pod's sandbox was created with.
func (r *Runtime) SandboxConfig(uid types.UID) (runtime.SandboxConfig, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, ok := r.sandboxConfigs[uid]
	return cfg, ok
}

// RemoveSandbox implements runtime.Runtime.
func (r *Runtime) RemoveSandbox(ctx context.Context, pod runtime.PodRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("RemoveSandbox %s/%s", pod.Namespace, pod.Name)
	for _, c := range r.containers {
		if c.status.Pod.UID == pod.UID {
			return fmt.Errorf("remove sandbox of pod %s: container %s (%s) still exists", pod, c.status.Name, c.status.ID)
		}
	}
	delete(r.sandboxes, pod.UID)
	return nil
}

// ListSandboxes implements runtime.Runtime.
func (r *Runtime) ListSandboxes(ctx context.Context) ([]runtime.Sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]runtime.Sandbox, 0, len(r.sandboxes))
	for _, sb := range r.sandboxes {
		out = append(out, sb)
	}
	slices.SortFunc(out, func(a, b runtime.Sandbox) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}
