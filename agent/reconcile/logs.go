package reconcile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/logs"
)

// podLogDir is the pod's log directory, <LogRoot>/<ns>_<name>_<uid>.
func (w *worker) podLogDir() string {
	return logs.PodDir(w.m.cfg.LogRoot, w.ref.Namespace, w.ref.Name, string(w.uid))
}

// removeLogs removes a cleaned-up pod's log directory: the logs go with the
// pod, as kubelet's container GC removes the directory of a pod whose
// content may be removed (evictPodLogsDirectories). The directory is keyed
// by UID, so a replaced manifest would otherwise leave one behind per edit.
func (w *worker) removeLogs() error {
	if w.m.cfg.LogRoot == "" {
		return nil
	}
	dir := w.podLogDir()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove logs of pod %s: %w", w.ref, err)
	}
	return nil
}

// removeStrayLogsLocked removes the log directories of pods that no worker
// runs and that are not desired and have nothing left in the runtime:
// pods that went while the agent was down, or whose cleanup could not
// remove them. Like kubelet's evictPodLogsDirectories it waits until the
// desired set is known ("all sources ready"). It runs under m.mu, so no
// worker for such a pod can start writing into the directory meanwhile
// (a worker exists before its first container does).
func (m *Manager) removeStrayLogsLocked(inRuntime map[types.UID]podSnapshot) {
	root := m.cfg.LogRoot
	if root == "" || !m.desiredSeen {
		return
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		m.cfg.Log.Warn("list pod log directories", "dir", root, "err", err)
		return
	}
	for _, e := range entries {
		s, ok := logs.PodUID(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		uid := types.UID(s)
		if _, ok := m.workers[uid]; ok {
			continue
		}
		if _, ok := m.desired[uid]; ok {
			continue
		}
		if p, ok := inRuntime[uid]; ok && (p.sandbox != nil || len(p.containers) > 0) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if err := os.RemoveAll(dir); err != nil {
			m.cfg.Log.Warn("remove logs of a pod that is gone", "dir", dir, "err", err)
			continue
		}
		m.cfg.Log.Info("removed logs of a pod that is gone", "dir", dir)
	}
}
