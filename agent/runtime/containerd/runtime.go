package containerd

import (
	"context"
	"errors"
	"fmt"
	corev1 "k8s.io/api/core/v1"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/runtime"
	cdlayout "github.com/podboot/podboot/init/containerd"
)

// snapshotter is the snapshotter images are unpacked for and containers
// run on.
const snapshotter = "overlayfs"

// runtimeName is containerd's runc shim.
const runtimeName = "io.containerd.runc.v2"

// Config says which containerd to use and where the agent keeps its state.
type Config struct {
	// Address is containerd's gRPC socket.
	Address string
	// Namespace is the containerd namespace (default: init/containerd's).
	Namespace string
	// StateDir is the agent's state directory: netns/, sandboxes/ and fifo/
	// live under it.
	StateDir string
	// RuncPath and RuncRoot are passed to the shim per container: runc's
	// binary and its state root.
	RuncPath string
	RuncRoot string
	// Mirrors are registry mirrors with k3s registries.yaml semantics: a
	// registry host ("docker.io", "registry.k8s.io", or "*" for any host
	// without its own entry) to endpoint URLs tried in order
	// ("http://127.0.0.1:5000" speaks plain HTTP), then the registry
	// itself. Pulled images keep their original names.
	Mirrors map[string][]string
	// Logs configures the containers' log files: rotation, and the total
	// all of them under LogRoot are held to.
	Logs logs.Config
	// LogRoot is where the containers' LogDirs are, <ns>_<name>_<uid>/
	// <container>/ (default <StateDir>/pods): the log budget's scope.
	LogRoot string
	// Network attaches each pod with its own network namespace to the pod
	// network (CNI); nil leaves such pods with loopback only.
	Network PodNetwork
	// HostsFile is the node's hosts file, the base of hostNetwork pods'
	// /etc/hosts as in kubelet (default /etc/hosts).
	HostsFile string
	Log       *slog.Logger
}

// PodNetwork is the pod network as the runtime needs it (netsetup/podnet
// and netsetup/hostport through an adapter): attach a pinned network
// namespace, publish the pod's hostPorts and return the pod's IPs; detach
// it again (idempotently).
type PodNetwork interface {
	Setup(ctx context.Context, podUID, netnsPath string, hostPorts []corev1.ContainerPort) (ips []string, err error)
	Teardown(ctx context.Context, podUID, netnsPath string) error
}

// Runtime is runtime.Runtime on containerd. Its methods are safe for
// concurrent use.
type Runtime struct {
	cfg    Config
	client *containerd.Client
	log    *slog.Logger

	// ctx lives as long as the Runtime: task waits, log copiers and the
	// event subscription run on it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// sandboxMu serializes sandbox creation and removal, CNI setup
	// included: concurrent setups were measured slower on 2 cores
	// (docs/networking.md, "Concurrency").
	sandboxMu sync.Mutex
	publishMu sync.Mutex // held while events are sent to subscribers

	// logBudget holds all the containers' logs to Logs.MaxTotal.
	logBudget *logs.Budget

	mu      sync.Mutex
	copiers map[string]*logCopier // container ID → its attached log copier
	subs    map[chan runtime.Event]context.Context
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to containerd and starts watching its task events.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = cdlayout.Namespace
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HostsFile == "" {
		cfg.HostsFile = "/etc/hosts"
	}
	if cfg.LogRoot == "" && cfg.StateDir != "" {
		cfg.LogRoot = filepath.Join(cfg.StateDir, "pods")
	}
	if cfg.Logs.MaxTotal == 0 {
		cfg.Logs.MaxTotal = logs.DefaultConfig().MaxTotal
	}
	if cfg.Address == "" || cfg.StateDir == "" {
		return nil, errors.New("containerd runtime: Address and StateDir are required")
	}
	if err := validateMirrors(cfg.Mirrors); err != nil {
		return nil, fmt.Errorf("containerd runtime: %w", err)
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "netns"), filepath.Join(cfg.StateDir, "sandboxes"), filepath.Join(cfg.StateDir, "fifo")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create runtime state directory %q: %w", d, err)
		}
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %q: %w", cfg.Address, err)
	}
	if _, err := client.Version(ctx); err != nil {
		client.Close()
		return nil, fmt.Errorf("connect to containerd at %q: %w", cfg.Address, err)
	}
	base, cancel := context.WithCancel(namespaces.WithNamespace(context.Background(), cfg.Namespace))
	r := &Runtime{
		cfg: cfg, client: client, log: cfg.Log, ctx: base, cancel: cancel,
		copiers: map[string]*logCopier{},
		subs:    map[chan runtime.Event]context.Context{},
	}
	r.logBudget = r.newLogBudget()
	// A smaller budget than the last agent's, or logs left by it: no
	// writer is open yet, and the newest attempt of each container is
	// never removed, so running containers' files stay.
	r.reportLogBudget(r.logBudget.Enforce())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.watchEvents()
	}()
	return r, nil
}

// Close stops the event watch and the log copiers (containers keep running;
// a new Runtime re-attaches) and closes the client.
func (r *Runtime) Close() error {
	r.cancel()
	r.mu.Lock()
	copiers := r.copiers
	r.copiers = map[string]*logCopier{}
	r.mu.Unlock()
	for _, c := range copiers {
		c.detach()
	}
	r.wg.Wait()
	return r.client.Close()
}

// withNamespace puts the runtime's containerd namespace on a caller's ctx.
func (r *Runtime) withNamespace(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// Version returns the containerd daemon's version (e.g. "v2.4.2"), which the
// agent reports as the Node's containerRuntimeVersion
// ("containerd://v2.4.2").
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.withNamespace(ctx))
	if err != nil {
		return "", fmt.Errorf("containerd version at %q: %w", r.cfg.Address, err)
	}
	return v.Version, nil
}
