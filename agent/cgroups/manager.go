package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/resources"
)

// Config is the node's cgroup configuration, kubelet's
// --cgroup-root/--enforce-node-allocatable=pods/--pod-max-pids.
type Config struct {
	Root         string              // cgroupfs path of kubepods, e.g. "/kubepods"
	Allocatable  corev1.ResourceList // cpu and memory enforced on Root (capacity - systemReserved)
	PodPidsLimit int64               // pids.max of each pod cgroup; <= 0 = max
	Log          *slog.Logger
}

// Manager keeps the kubepods hierarchy. Its methods may be called
// concurrently for different pods.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	unified bool
	// v1 and hybrid: the hierarchies cgroup1.Default found at New.
	hierarchy cgroup1.Hierarchy
	// unified: the cgroup2 mount point.
	unifiedMount string
	// Every cgroup mount, v1 hierarchies and the unified one alike: a pod's
	// cgroup is removed and listed in all of them, since runc also creates
	// the containers' cgroups in the unified hierarchy of a hybrid host.
	mounts []mount
}

// New detects the cgroup mode, then creates Root with node allocatable
// enforced and the QoS cgroups, besteffort at the minimum shares and
// burstable as for no Burstable pod yet.
func New(cfg Config) (*Manager, error) {
	if err := checkRoot(cfg.Root); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: log, mounts: mounts}
	switch mode := cgroups.Mode(); mode {
	case cgroups.Unified:
		m.unified = true
		for _, mt := range mounts {
			if mt.unified {
				m.unifiedMount = mt.point
				break
			}
		}
		if m.unifiedMount == "" {
			return nil, errors.New("cgroups: unified mode but no cgroup2 mount in /proc/self/mountinfo")
		}
	case cgroups.Legacy, cgroups.Hybrid:
		subsystems, err := cgroup1.Default()
		if err != nil {
			return nil, fmt.Errorf("cgroups: list the cgroup v1 hierarchies: %w", err)
		}
		m.hierarchy = func() ([]cgroup1.Subsystem, error) { return subsystems, nil }
	default:
		return nil, errors.New("cgroups: no cgroup filesystem mounted")
	}
	if err := m.apply(cfg.Root, rootValues(cfg.Allocatable)); err != nil {
		return nil, err
	}
	if err := m.apply(path.Join(cfg.Root, besteffortName), besteffortValues()); err != nil {
		return nil, err
	}
	if err := m.UpdateQOS(nil); err != nil {
		return nil, err
	}
	log.Debug("cgroups ready", "root", cfg.Root, "unified", m.unified)
	return m, nil
}

// checkRoot accepts an absolute, clean cgroup path below the hierarchy's
// root that is not a mount path.
func checkRoot(root string) error {
	switch {
	case root == "" || root[0] != '/':
		return fmt.Errorf("cgroups: root %q is not an absolute cgroup path", root)
	case path.Clean(root) != root || root == "/":
		return fmt.Errorf("cgroups: root %q is not a clean path below /", root)
	case strings.HasPrefix(root, "/sys/fs/cgroup"):
		return fmt.Errorf("cgroups: root %q is a cgroupfs path, not a cgroup path", root)
	}
	return nil
}

// Unified reports whether the host is pure cgroup v2.
func (m *Manager) Unified() bool { return m.unified }

// PodPath is "<Root>[/burstable|/besteffort]/pod<uid>"; "" for a nil pod.
func (m *Manager) PodPath(pod *corev1.Pod) string {
	if pod == nil {
		return ""
	}
	return podPath(m.cfg.Root, resources.QOSClass(pod), pod.UID)
}

// EnsurePod creates or updates the pod's cgroup and returns its path.
func (m *Manager) EnsurePod(pod *corev1.Pod) (string, error) {
	if pod == nil {
		return "", errors.New("cgroups: ensure pod cgroup: no pod")
	}
	if !validUID(pod.UID) {
		return "", fmt.Errorf("cgroups: ensure cgroup of pod %s/%s: bad uid %q", pod.Namespace, pod.Name, pod.UID)
	}
	p := m.PodPath(pod)
	if err := m.apply(p, podValues(pod, m.cfg.PodPidsLimit)); err != nil {
		return "", err
	}
	return p, nil
}

// UpdateQOS sets the burstable QoS cgroup's shares from the active pods.
func (m *Manager) UpdateQOS(pods []*corev1.Pod) error {
	return m.apply(path.Join(m.cfg.Root, burstableName), burstableValues(pods))
}

// apply creates the cgroup or updates its values: in every v1 hierarchy,
// or in the unified one with its controllers enabled in the ancestors'
// cgroup.subtree_control.
func (m *Manager) apply(group string, v values) error {
	var err error
	if m.unified {
		err = m.applyV2(group, v2Resources(v))
	} else {
		_, err = cgroup1.New(cgroup1.StaticPath(group), v1Resources(v), cgroup1.WithHierarchy(m.hierarchy))
	}
	if err != nil {
		return fmt.Errorf("cgroups: set cgroup %s: %w", group, err)
	}
	return nil
}

func (m *Manager) applyV2(group string, r *cgroup2.Resources) error {
	if _, err := os.Stat(filepath.Join(m.unifiedMount, group)); errors.Is(err, fs.ErrNotExist) {
		_, err := cgroup2.NewManager(m.unifiedMount, group, r)
		return err
	}
	// NewManager removes the directory when a write fails; an existing
	// cgroup is updated in place instead.
	cg, err := cgroup2.Load(group, cgroup2.WithMountpoint(m.unifiedMount))
	if err != nil {
		return err
	}
	if err := cg.ToggleControllers(r.EnabledControllers(), cgroup2.Enable); err != nil {
		return err
	}
	return cg.Update(r)
}

// RemovePod kills what still runs in the pod's cgroup, wherever its QoS
// class put it, and removes it with the containers' cgroups left inside,
// in every hierarchy (kubelet's podContainerManager.Destroy). A missing
// cgroup is not an error.
func (m *Manager) RemovePod(uid types.UID) error {
	if !validUID(uid) {
		return fmt.Errorf("cgroups: remove pod cgroup: bad uid %q", uid)
	}
	var errs []error
	for _, parent := range []string{"", burstableName, besteffortName} {
		group := path.Join(m.cfg.Root, parent, podPrefix+string(uid))
		if err := m.remove(group); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PodUIDs lists the pod cgroups present in any hierarchy, at any QoS level.
func (m *Manager) PodUIDs() ([]types.UID, error) {
	seen := map[types.UID]bool{}
	var uids []types.UID
	for _, mt := range m.mounts {
		for _, parent := range []string{"", burstableName, besteffortName} {
			dir := filepath.Join(mt.point, m.cfg.Root, parent)
			des, err := os.ReadDir(dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("cgroups: list pod cgroups in %s: %w", dir, err)
			}
			for _, de := range des {
				uid := types.UID(strings.TrimPrefix(de.Name(), podPrefix))
				if !de.IsDir() || !strings.HasPrefix(de.Name(), podPrefix) || !validUID(uid) || seen[uid] {
					continue
				}
				seen[uid] = true
				uids = append(uids, uid)
			}
		}
	}
	slices.Sort(uids)
	return uids, nil
}

// Destroy removes the QoS cgroups and Root in every hierarchy; it fails
// while a pod cgroup is left.
func (m *Manager) Destroy() error {
	var errs []error
	for _, mt := range m.mounts {
		for _, group := range []string{
			path.Join(m.cfg.Root, besteffortName),
			path.Join(m.cfg.Root, burstableName),
			m.cfg.Root,
		} {
			dir := filepath.Join(mt.point, group)
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cgroups: remove cgroup %s: %w", group, err))
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveStrayContainers removes, in every hierarchy, the container cgroups
// runc made inside the pod's cgroup (<pod>/<container ID>) whose container
// has no live task (live reports which do) and which hold no process. runc
// removes a container's cgroup when the container is deleted; these are
// left by containers never deleted because their shim and containerd were
// killed. Nothing is killed: a cgroup with a process in it (a container
// process that outlived its shim) is left as it is. It returns the IDs
// removed, sorted.
func (m *Manager) RemoveStrayContainers(uid types.UID, live func(id string) bool) ([]string, error) {
	if !validUID(uid) {
		return nil, fmt.Errorf("cgroups: remove stray container cgroups: bad uid %q", uid)
	}
	removed := map[string]bool{}
	var errs []error
	for _, mt := range m.mounts {
		for _, parent := range []string{"", burstableName, besteffortName} {
			pod := filepath.Join(mt.point, m.cfg.Root, parent, podPrefix+string(uid))
			des, err := os.ReadDir(pod)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cgroups: list container cgroups of pod %s: %w", uid, err))
				continue
			}
			for _, de := range des {
				if !de.IsDir() || live(de.Name()) {
					continue
				}
				// rmdir refuses a cgroup with a process or a child in it
				// (EBUSY): exactly what must be left.
				err := unix.Rmdir(filepath.Join(pod, de.Name()))
				switch {
				case err == nil:
					removed[de.Name()] = true
				case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.ENOENT):
					m.log.Debug("container cgroup in use: left", "cgroup", filepath.Join(pod, de.Name()), "err", err)
				default:
					errs = append(errs, fmt.Errorf("cgroups: remove container cgroup %s: %w", filepath.Join(pod, de.Name()), err))
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(removed)), errors.Join(errs...)
}
