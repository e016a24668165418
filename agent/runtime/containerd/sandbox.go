package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/atomicfile"
)

// sandboxRecord is what <StateDir>/sandboxes/<uid>.json keeps of a sandbox,
// so that a restarted agent lists it.
type sandboxRecord struct {
	Sandbox     runtime.Sandbox
	HostNetwork bool `json:",omitempty"`
	HostIPC     bool `json:",omitempty"`
}

func (r *Runtime) recordPath(uid string) string {
	return filepath.Join(r.cfg.StateDir, "sandboxes", uid+".json")
}

func (r *Runtime) nsDir(uid string) string {
	return filepath.Join(r.cfg.StateDir, "netns", uid)
}

// validUID keeps a pod UID usable as a file name.
func validUID(uid string) error {
	if uid == "" || uid == "." || uid == ".." || strings.ContainsAny(uid, "/\x00") {
		return fmt.Errorf("pod UID %q cannot name a sandbox", uid)
	}
	return nil
}

// RunSandbox pins new network, IPC and UTS namespaces for the pod (the
// host's for HostNetwork/HostIPC); an existing sandbox is returned as is.
func (r *Runtime) RunSandbox(ctx context.Context, cfg runtime.SandboxConfig) (runtime.Sandbox, error) {
	uid := string(cfg.Pod.UID)
	if err := validUID(uid); err != nil {
		return runtime.Sandbox{}, fmt.Errorf("run sandbox of pod %s: %w", cfg.Pod, err)
	}
	r.sandboxMu.Lock()
	defer r.sandboxMu.Unlock()
	if rec, err := r.readRecord(uid); err == nil {
		return rec.Sandbox, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return runtime.Sandbox{}, fmt.Errorf("run sandbox of pod %s: %w", cfg.Pod, err)
	}
	dir := r.nsDir(uid)
	kinds := map[string]bool{"net": !cfg.HostNetwork, "uts": !cfg.HostNetwork, "ipc": !cfg.HostIPC}
	sb := runtime.Sandbox{Pod: cfg.Pod, Hostname: cfg.Hostname, CgroupParent: cfg.CgroupParent, CreatedAt: time.Now()}
	if kinds["net"] || kinds["ipc"] {
		if err := pinNamespaces(dir, cfg.Hostname, kinds); err != nil {
			_ = unpinNamespaces(dir)
			return runtime.Sandbox{}, fmt.Errorf("run sandbox of pod %s: %w", cfg.Pod, err)
		}
	}
	if kinds["net"] {
		sb.NetNS, sb.UTSNS = filepath.Join(dir, "net"), filepath.Join(dir, "uts")
		if n := r.cfg.Network; n != nil {
			ips, err := n.Setup(ctx, uid, sb.NetNS, cfg.HostPorts)
			if err != nil {
				// What a failed add left behind goes too, as containerd's
				// CRI does.
				_ = n.Teardown(ctx, uid, sb.NetNS)
				_ = unpinNamespaces(dir)
				return runtime.Sandbox{}, fmt.Errorf("run sandbox of pod %s: failed to setup network for sandbox: %w", cfg.Pod, err)
			}
			if len(ips) > 0 {
				sb.IP = ips[0]
			}
		}
	}
	if kinds["ipc"] {
		sb.IPCNS = filepath.Join(dir, "ipc")
	}
	if cfg.HostNetwork {
		// The host's UTS namespace: the pod's hostname is the node's.
		if h, err := os.Hostname(); err == nil {
			sb.Hostname = h
		}
	}
	if err := r.writePodFiles(sb, cfg); err != nil {
		_ = unpinNamespaces(dir)
		return runtime.Sandbox{}, fmt.Errorf("run sandbox of pod %s: %w", cfg.Pod, err)
	}
	rec := sandboxRecord{Sandbox: sb, HostNetwork: cfg.HostNetwork, HostIPC: cfg.HostIPC}
	if err := r.writeRecord(uid, rec); err != nil {
		_ = unpinNamespaces(dir)
		return runtime.Sandbox{}, fmt.Errorf("run sandbox of pod %s: %w", cfg.Pod, err)
	}
	return sb, nil
}

// RemoveSandbox unmounts and deletes the pod's namespaces and record.
func (r *Runtime) RemoveSandbox(ctx context.Context, pod runtime.PodRef) error {
	uid := string(pod.UID)
	if err := validUID(uid); err != nil {
		return fmt.Errorf("remove sandbox of pod %s: %w", pod, err)
	}
	r.sandboxMu.Lock()
	defer r.sandboxMu.Unlock()
	if n := r.cfg.Network; n != nil {
		// Idempotent: a pod never attached, or whose namespace is gone,
		// only has its address released.
		if err := n.Teardown(ctx, uid, filepath.Join(r.nsDir(uid), "net")); err != nil {
			return fmt.Errorf("remove sandbox of pod %s: tear down its network: %w", pod, err)
		}
	}
	if err := unpinNamespaces(r.nsDir(uid)); err != nil {
		return fmt.Errorf("remove sandbox of pod %s: %w", pod, err)
	}
	if err := os.RemoveAll(r.podFilesDir(uid)); err != nil {
		return fmt.Errorf("remove sandbox of pod %s: %w", pod, err)
	}
	if err := os.Remove(r.recordPath(uid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove sandbox of pod %s: %w", pod, err)
	}
	return nil
}

// ListSandboxes returns the recorded sandboxes, oldest first.
func (r *Runtime) ListSandboxes(ctx context.Context) ([]runtime.Sandbox, error) {
	dir := filepath.Join(r.cfg.StateDir, "sandboxes")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes in %q: %w", dir, err)
	}
	var out []runtime.Sandbox
	var errs []error
	for _, e := range entries {
		uid, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		rec, err := r.readRecord(uid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, rec.Sandbox)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, errors.Join(errs...)
}

func (r *Runtime) readRecord(uid string) (sandboxRecord, error) {
	var rec sandboxRecord
	b, err := os.ReadFile(r.recordPath(uid))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read sandbox record %q: %w", r.recordPath(uid), err)
	}
	return rec, nil
}

func (r *Runtime) writeRecord(uid string, rec sandboxRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(r.recordPath(uid), b, 0o600); err != nil {
		return fmt.Errorf("sandbox record: %w", err)
	}
	return nil
}
