package podbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Tracker follows the pods of an agent through its API, list then watch as
// a client-go reflector does, and remembers when each pod was first seen
// with every container running. The instant is when the event reached us:
// what a user watching `kubectl get pods -w` would see.
type Tracker struct {
	base   string
	client *http.Client

	mu         sync.Mutex
	pods       map[string]trackedPod // by name
	changed    chan struct{}         // closed and replaced on every change
	reconnects int
	lastErr    error
}

type trackedPod struct {
	uid       string
	seenAt    time.Time // first event or list that had the pod
	runningAt time.Time // zero until every container ran
}

// PodTimes are when the tracker first saw a pod, and first saw it with all
// its containers running.
type PodTimes struct {
	Seen, Running time.Time
}

// watchEvent is a metav1.WatchEvent whose object is decoded later, by type.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// Track starts following the pods of the API at base (http://host:port)
// until ctx ends. It returns once the first list has been read, so every
// change after it is seen.
func Track(ctx context.Context, base string, client *http.Client) (*Tracker, error) {
	t := &Tracker{base: base, client: client, pods: map[string]trackedPod{}, changed: make(chan struct{})}
	rv, err := t.list(ctx)
	if err != nil {
		return nil, err
	}
	body, err := t.openWatch(ctx, rv)
	if err != nil {
		return nil, err
	}
	go t.run(ctx, body)
	return t, nil
}

// run reads the watch and, whenever it ends (the agent drops a lagging
// watcher, a 410 Gone), lists and watches again.
func (t *Tracker) run(ctx context.Context, body io.ReadCloser) {
	for {
		err := t.consume(body)
		body.Close()
		if ctx.Err() != nil {
			return
		}
		for {
			t.noteReconnect(err)
			var rv string
			if rv, err = t.list(ctx); err == nil {
				if body, err = t.openWatch(ctx, rv); err == nil {
					break
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (t *Tracker) noteReconnect(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reconnects++
	t.lastErr = err
}

// Reconnects tells how often the watch had to be opened again, and why the
// last time: a reconnect delays what the tracker sees of the pods.
func (t *Tracker) Reconnects() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reconnects, t.lastErr
}

func (t *Tracker) list(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/api/v1/pods", nil)
	if err != nil {
		return "", fmt.Errorf("list pods at %s: %w", t.base, err)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("list pods at %s: %w", t.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("list pods at %s: %s: %s", t.base, resp.Status, msg)
	}
	var list corev1.PodList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return "", fmt.Errorf("list pods at %s: decode PodList: %w", t.base, err)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		seen[list.Items[i].Name] = true
		t.updateLocked(&list.Items[i], now)
	}
	for name := range t.pods {
		if !seen[name] {
			delete(t.pods, name)
		}
	}
	t.notifyLocked()
	return list.ResourceVersion, nil
}

func (t *Tracker) openWatch(ctx context.Context, rv string) (io.ReadCloser, error) {
	u := t.base + "/api/v1/pods?watch=true&resourceVersion=" + url.QueryEscape(rv)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("watch pods at %s: %w", t.base, err)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("watch pods at %s: %w", t.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("watch pods at %s: %s: %s", t.base, resp.Status, msg)
	}
	return resp.Body, nil
}

// consume applies watch events until the stream ends or carries an ERROR.
func (t *Tracker) consume(body io.Reader) error {
	dec := json.NewDecoder(body)
	for {
		var ev watchEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("watch stream ended")
			}
			return fmt.Errorf("decode watch event: %w", err)
		}
		now := time.Now()
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED":
		case "BOOKMARK":
			continue
		default: // ERROR: a Status, e.g. 410 Expired
			return fmt.Errorf("watch event %s: %s", ev.Type, ev.Object)
		}
		var pod corev1.Pod
		if err := json.Unmarshal(ev.Object, &pod); err != nil {
			return fmt.Errorf("decode pod of watch event %s: %w", ev.Type, err)
		}
		t.mu.Lock()
		if ev.Type == "DELETED" {
			delete(t.pods, pod.Name)
		} else {
			t.updateLocked(&pod, now)
		}
		t.notifyLocked()
		t.mu.Unlock()
	}
}

func (t *Tracker) updateLocked(pod *corev1.Pod, now time.Time) {
	old, ok := t.pods[pod.Name]
	if !ok || old.uid != string(pod.UID) {
		old = trackedPod{uid: string(pod.UID), seenAt: now}
	}
	if old.runningAt.IsZero() && AllRunning(pod) {
		old.runningAt = now
	}
	t.pods[pod.Name] = old
}

func (t *Tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// AllRunning reports whether every container of the pod's spec has a
// status in state running.
func AllRunning(pod *corev1.Pod) bool {
	if len(pod.Spec.Containers) == 0 {
		return false
	}
	running := map[string]bool{}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil {
			running[cs.Name] = true
		}
	}
	for _, c := range pod.Spec.Containers {
		if !running[c.Name] {
			return false
		}
	}
	return true
}

// WaitRunning waits until the pod named name has been seen with all its
// containers running and returns when the pod was first seen, and first
// seen running.
func (t *Tracker) WaitRunning(ctx context.Context, name string) (PodTimes, error) {
	for {
		t.mu.Lock()
		p, ok := t.pods[name]
		changed := t.changed
		t.mu.Unlock()
		if ok && !p.runningAt.IsZero() {
			return PodTimes{Seen: p.seenAt, Running: p.runningAt}, nil
		}
		select {
		case <-ctx.Done():
			state := "not seen"
			if ok {
				state = "seen, not all containers running"
			}
			return PodTimes{}, fmt.Errorf("wait for pod %q to run: %s: %w", name, state, context.Cause(ctx))
		case <-changed:
		}
	}
}

// WaitGone waits until none of the named pods is in the API.
func (t *Tracker) WaitGone(ctx context.Context, names []string) error {
	for {
		t.mu.Lock()
		var left []string
		for _, n := range names {
			if _, ok := t.pods[n]; ok {
				left = append(left, n)
			}
		}
		changed := t.changed
		t.mu.Unlock()
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d pods to go (%q ...): %w", len(left), left[0], context.Cause(ctx))
		case <-changed:
		}
	}
}
