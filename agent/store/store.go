package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// ErrNotFound is wrapped by Delete when the object does not exist.
var ErrNotFound = errors.New("not found")

// historySize bounds the changes kept for watchers that resume from a
// resourceVersion; the API server's watch cache keeps a similar window.
const historySize = 1000

// Store is an in-memory object store with resourceVersions and watch. Its
// methods are safe for concurrent use.
type Store struct {
	clock func() time.Time

	mu        sync.Mutex
	rv        uint64 // last resourceVersion handed out
	objects   map[key]runtime.Object
	history   []change // ring of the last historySize changes, oldest first
	compacted uint64   // resourceVersion of the newest change dropped from history
	watchers  map[*watcher]struct{}
}

// change is one write, kept for replay to watchers.
type change struct {
	rv  uint64
	typ watch.EventType
	key key
	obj runtime.Object // never modified after it is stored
}

// New returns an empty store; clock stamps creationTimestamps and ages
// events (nil means time.Now).
func New(clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{
		clock: clock,
		// Start above zero so that even an empty list carries a
		// resourceVersion distinct from "0" (which means "any" to clients).
		rv:       1,
		objects:  map[key]runtime.Object{},
		watchers: map[*watcher]struct{}{},
	}
}

// Put creates or replaces an object: a *corev1.Pod, Namespace, Node, Event,
// ConfigMap, Secret or a *coordinationv1.Lease. It assigns metadata.resourceVersion, keeps the
// creationTimestamp and uid of the object it replaces (or sets them on
// create when they are empty, as the API server does) and notifies
// watchers. A Put that changes nothing but the resourceVersion is a no-op.
func (s *Store) Put(obj runtime.Object) error {
	kind, meta, err := kindOf(obj)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	k := key{kind: kind, namespace: meta.Namespace, name: meta.Name}
	if err := validateKey(k); err != nil {
		return fmt.Errorf("put %s: %w", k, err)
	}
	obj = obj.DeepCopyObject()
	_, meta, _ = kindOf(obj)
	setTypeMeta(obj, kind)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	typ := watch.Added
	if old, ok := s.objects[k]; ok {
		typ = watch.Modified
		_, oldMeta, _ := kindOf(old)
		if meta.CreationTimestamp.IsZero() {
			meta.CreationTimestamp = oldMeta.CreationTimestamp
		}
		if meta.UID == "" {
			meta.UID = oldMeta.UID
		}
		meta.ResourceVersion = oldMeta.ResourceVersion
		if apiequality.Semantic.DeepEqual(old, obj) {
			return nil
		}
	} else {
		if meta.CreationTimestamp.IsZero() {
			meta.CreationTimestamp = metav1.NewTime(now.Truncate(time.Second))
		}
		if meta.UID == "" {
			meta.UID = newUID()
		}
	}
	s.commitLocked(typ, k, obj, meta)
	if kind == KindEvent {
		s.pruneEventsLocked(now)
	}
	return nil
}

// Delete removes an object; kind is the API kind ("Pod"). Watchers get a
// DELETED event carrying the object's last state.
func (s *Store) Delete(kind, namespace, name string) error {
	k := key{kind: kind, namespace: namespace, name: name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteLocked(k); err != nil {
		return fmt.Errorf("delete %s: %w", k, err)
	}
	return nil
}

func (s *Store) deleteLocked(k key) error {
	old, ok := s.objects[k]
	if !ok {
		return ErrNotFound
	}
	obj := old.DeepCopyObject()
	_, meta, _ := kindOf(obj)
	delete(s.objects, k)
	s.commitLocked(watch.Deleted, k, obj, meta)
	return nil
}

// commitLocked gives obj the next resourceVersion, stores it (unless it is
// a deletion), records the change and tells the watchers.
func (s *Store) commitLocked(typ watch.EventType, k key, obj runtime.Object, meta *metav1.ObjectMeta) {
	s.rv++
	meta.ResourceVersion = strconv.FormatUint(s.rv, 10)
	if typ != watch.Deleted {
		s.objects[k] = obj
	}
	c := change{rv: s.rv, typ: typ, key: k, obj: obj}
	if len(s.history) == historySize {
		s.compacted = s.history[0].rv
		copy(s.history, s.history[1:])
		s.history = s.history[:historySize-1]
	}
	s.history = append(s.history, c)
	s.notifyLocked(c)
}

// Get returns a deep copy of an object.
func (s *Store) Get(kind, namespace, name string) (runtime.Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects[key{kind: kind, namespace: namespace, name: name}]
	if !ok {
		return nil, false
	}
	return obj.DeepCopyObject(), true
}

// List returns deep copies of the objects of kind in namespace ("" = all
// namespaces) sorted by namespace and name, and the resourceVersion the list
// is current at, from which a watch continues without a gap.
func (s *Store) List(kind, namespace string) ([]runtime.Object, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == KindEvent {
		s.pruneEventsLocked(s.clock())
	}
	objs := s.listLocked(kind, namespace)
	for i, o := range objs {
		objs[i] = o.DeepCopyObject()
	}
	return objs, strconv.FormatUint(s.rv, 10)
}

// listLocked returns the stored objects (not copies) sorted by key.
func (s *Store) listLocked(kind, namespace string) []runtime.Object {
	var keys []key
	for k := range s.objects {
		if k.kind == kind && (namespace == "" || k.namespace == namespace) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].namespace != keys[j].namespace {
			return keys[i].namespace < keys[j].namespace
		}
		return keys[i].name < keys[j].name
	})
	objs := make([]runtime.Object, len(keys))
	for i, k := range keys {
		objs[i] = s.objects[k]
	}
	return objs
}

func validateKey(k key) error {
	if k.name == "" {
		return errors.New("metadata.name is empty")
	}
	if Namespaced(k.kind) && k.namespace == "" {
		return errors.New("metadata.namespace is empty")
	}
	if !Namespaced(k.kind) && k.namespace != "" {
		return fmt.Errorf("%s is cluster-scoped but metadata.namespace is %q", k.kind, k.namespace)
	}
	return nil
}

func setTypeMeta(obj runtime.Object, kind string) {
	obj.GetObjectKind().SetGroupVersionKind(GroupVersionKind(kind))
}

// newUID returns a random RFC 4122 version 4 UUID, as the API server
// assigns to created objects.
func newUID() types.UID {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}
