package store

import (
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Aggregation limits, client-go's defaults (tools/record's EventCorrelator):
// more than aggregateMaxEvents events that differ only in their message
// within aggregateInterval are combined into one.
const (
	aggregateMaxEvents = 10
	aggregateInterval  = 10 * time.Minute
	combinedPrefix     = "(combined from similar events): "
	// recorderCacheSize bounds the recorder's memory of past events, like
	// client-go's LRU caches.
	recorderCacheSize = 4096
)

// Recorder writes *corev1.Event objects into a Store as kubelet's event
// recorder does: source kubelet on the node, one event per distinct
// occurrence and a count for repeats. It is safe for concurrent use.
type Recorder struct {
	store    *Store
	nodeName string
	clock    func() time.Time

	mu         sync.Mutex
	observed   map[string]observedEvent   // event key → the event it became
	aggregates map[string]aggregateRecord // key without message → messages seen
}

type observedEvent struct {
	namespace, name string
}

type aggregateRecord struct {
	messages map[string]struct{}
	last     time.Time
}

// NewRecorder returns a recorder for events reported by the kubelet of
// nodeName (nil clock means time.Now).
func NewRecorder(s *Store, nodeName string, clock func() time.Time) *Recorder {
	if clock == nil {
		clock = time.Now
	}
	return &Recorder{
		store: s, nodeName: nodeName, clock: clock,
		observed:   map[string]observedEvent{},
		aggregates: map[string]aggregateRecord{},
	}
}

// Eventf records an event about obj (usually a *corev1.Pod). eventtype is
// corev1.EventTypeNormal or corev1.EventTypeWarning; like client-go, the
// recorder drops events of any other type and about objects it cannot
// reference.
func (r *Recorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	r.EventfOnField(obj, "", eventtype, reason, messageFmt, args...)
}

// EventfOnField records an event about a part of obj, named by fieldPath
// as kubelet names containers: "spec.containers{web}".
func (r *Recorder) EventfOnField(obj runtime.Object, fieldPath, eventtype, reason, messageFmt string, args ...any) {
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		return
	}
	ref, ok := r.reference(obj)
	if !ok {
		return
	}
	ref.FieldPath = fieldPath
	message := messageFmt
	if len(args) > 0 {
		message = fmt.Sprintf(messageFmt, args...)
	}
	r.record(ref, eventtype, reason, message)
}

// reference builds involvedObject as client-go's reference.GetReference
// does, with kubelet's convention for nodes (uid = node name).
func (r *Recorder) reference(obj runtime.Object) (corev1.ObjectReference, bool) {
	kind, meta, err := kindOf(obj)
	if err != nil || meta.Name == "" {
		return corev1.ObjectReference{}, false
	}
	ref := corev1.ObjectReference{
		Kind:            kind,
		APIVersion:      "v1",
		Namespace:       meta.Namespace,
		Name:            meta.Name,
		UID:             meta.UID,
		ResourceVersion: meta.ResourceVersion,
	}
	if kind == KindNode {
		ref.UID = types.UID(meta.Name)
		ref.ResourceVersion = ""
	}
	return ref, true
}

func (r *Recorder) record(ref corev1.ObjectReference, eventtype, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock()
	source := corev1.EventSource{Component: "kubelet", Host: r.nodeName}
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}

	// Aggregate events that differ only in their message (client-go's
	// EventAggregator).
	objectKey := strings.Join([]string{source.Component, source.Host, ref.Kind, ref.Namespace, ref.Name,
		ref.FieldPath, string(ref.UID), ref.APIVersion, eventtype, reason}, "\x00")
	key := objectKey + "\x00" + message
	agg, ok := r.aggregates[objectKey]
	if !ok || now.Sub(agg.last) > aggregateInterval {
		agg = aggregateRecord{messages: map[string]struct{}{}}
	}
	agg.messages[message] = struct{}{}
	agg.last = now
	remember(r.aggregates, objectKey, agg)
	if len(agg.messages) >= aggregateMaxEvents {
		for m := range agg.messages { // client-go pops any one
			delete(agg.messages, m)
			break
		}
		key = objectKey
		message = combinedPrefix + message
	}

	// Count repeats of the same event (client-go's eventLogger).
	if seen, ok := r.observed[key]; ok {
		if cur, found := r.store.Get(KindEvent, seen.namespace, seen.name); found {
			ev := cur.(*corev1.Event)
			ev.Count++
			ev.LastTimestamp = metav1.NewTime(now)
			ev.Message = message
			if err := r.store.Put(ev); err == nil {
				return
			}
		}
	}
	t := metav1.NewTime(now)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      r.freeName(namespace, ref.Name, now.UnixNano()),
			Namespace: namespace,
		},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             message,
		FirstTimestamp:      t,
		LastTimestamp:       t,
		Count:               1,
		Type:                eventtype,
		Source:              source,
		ReportingController: source.Component,
		ReportingInstance:   source.Host,
	}
	if err := r.store.Put(ev); err != nil {
		return // only a malformed reference fails, and reference() builds none
	}
	remember(r.observed, key, observedEvent{namespace: namespace, name: ev.Name})
}

// freeName returns client-go's event name, <object>.<hex unix nanos>,
// moved on by a nanosecond while taken: a coarse or fake clock must not
// make two events overwrite each other.
func (r *Recorder) freeName(namespace, object string, nanos int64) string {
	for {
		name := fmt.Sprintf("%v.%x", object, nanos)
		if _, taken := r.store.Get(KindEvent, namespace, name); !taken {
			return name
		}
		nanos++
	}
}

// remember stores v under k, forgetting everything when the cache is full:
// cruder than an LRU, and a forgotten event only means a new Event object.
func remember[V any](m map[string]V, k string, v V) {
	if _, ok := m[k]; !ok && len(m) >= recorderCacheSize {
		clear(m)
	}
	m[k] = v
}
