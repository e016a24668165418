package reconcile

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/backoff"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/atomicfile"
)

// stateData is the JSON state file: what a restarted agent cannot read back
// from container labels.
type stateData struct {
	Pods         map[types.UID]*podState `json:"pods,omitempty"`
	CrashBackoff backoff.State           `json:"crashBackoff,omitempty"`
	ImageBackoff backoff.State           `json:"imageBackoff,omitempty"`
}

type podState struct {
	Namespace         string                `json:"namespace"`
	Name              string                `json:"name"`
	CreationTimestamp metav1.Time           `json:"creationTimestamp"`
	StartTime         *metav1.Time          `json:"startTime,omitempty"`
	Conditions        []corev1.PodCondition `json:"conditions,omitempty"`
}

// stateFile holds the state in memory and writes it atomically.
type stateFile struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	data  stateData
	saved []byte
	// dirty: data may differ from what was saved; only then is the state
	// encoded again (encoding every pod on every sync costs O(pods)).
	dirty bool
}

// loadState reads path; a missing or corrupt file is logged and ignored.
func loadState(path string, log *slog.Logger) *stateFile {
	s := &stateFile{path: path, log: log, data: stateData{Pods: map[types.UID]*podState{}}}
	if path == "" {
		return s
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no agent state file, starting fresh", "file", path)
		return s
	case err != nil:
		log.Warn("ignoring unreadable agent state file", "file", path, "err", err)
		return s
	}
	var d stateData
	if err := json.Unmarshal(b, &d); err != nil {
		log.Warn("ignoring corrupt agent state file", "file", path, "err", err)
		return s
	}
	if d.Pods == nil {
		d.Pods = map[types.UID]*podState{}
	}
	s.data, s.saved = d, b
	return s
}

// restorePod returns a pod's creation time (now for a pod never seen) and
// the part of its previous status that was saved.
func (s *stateFile) restorePod(uid types.UID, now metav1.Time) (metav1.Time, *corev1.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.data.Pods[uid]
	if !ok || p.CreationTimestamp.IsZero() {
		return now, nil
	}
	return p.CreationTimestamp, &corev1.PodStatus{StartTime: p.StartTime.DeepCopy(), Conditions: append([]corev1.PodCondition(nil), p.Conditions...)}
}

func (s *stateFile) recordPod(ref runtime.PodRef, created metav1.Time, status *corev1.PodStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &podState{
		Namespace: ref.Namespace, Name: ref.Name, CreationTimestamp: created,
		StartTime: status.StartTime.DeepCopy(), Conditions: append([]corev1.PodCondition(nil), status.Conditions...),
	}
	if old, ok := s.data.Pods[ref.UID]; ok && equality.Semantic.DeepEqual(old, p) {
		return
	}
	s.data.Pods[ref.UID] = p
	s.dirty = true
}

// markDirty records a change the state does not see itself (a backoff).
func (s *stateFile) markDirty() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty = true
}

func (s *stateFile) forgetPod(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data.Pods, uid)
	s.dirty = true
}

// stateDebounce is how long a change waits before the state file is
// written, so a burst of pod syncs writes it once.
const stateDebounce = 500 * time.Millisecond

// saveState asks Run to write the state file soon if anything changed; it
// costs nothing when nothing did.
func (m *Manager) saveState() {
	s := m.state
	s.mu.Lock()
	dirty := s.dirty
	s.mu.Unlock()
	if !dirty {
		return
	}
	select {
	case m.saveReq <- struct{}{}:
	default:
	}
}

// flushState writes the state file if anything changed; failures are
// logged (the agent keeps running pods without it).
func (m *Manager) flushState() {
	s := m.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return
	}
	s.dirty = false
	s.data.CrashBackoff = m.crash.Export()
	s.data.ImageBackoff = m.images.Export()
	if s.path == "" {
		return
	}
	b, err := json.MarshalIndent(s.data, "", "  ")
	if err != nil {
		s.log.Warn("encode agent state", "err", err)
		return
	}
	if reflect.DeepEqual(b, s.saved) {
		return
	}
	if err := atomicfile.Write(s.path, b, 0o600); err != nil {
		s.dirty = true // try again with the next change
		s.log.Warn("save agent state", "err", err)
		return
	}
	s.saved = b
}
