package podbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func pod(name, uid string, running ...bool) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)}}
	for i, r := range running {
		c := fmt.Sprintf("c%d", i)
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		cs := corev1.ContainerStatus{Name: c}
		if r {
			cs.State.Running = &corev1.ContainerStateRunning{}
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
	}
	return p
}

func TestAllRunning(t *testing.T) {
	noStatus := pod("x", "1", true, true)
	noStatus.Status.ContainerStatuses = noStatus.Status.ContainerStatuses[:1]
	tests := []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{"all running", pod("x", "1", true, true), true},
		{"one waiting", pod("x", "1", true, false), false},
		{"a container without status", noStatus, false},
		{"no containers", pod("x", "1"), false},
	}
	for _, tt := range tests {
		if got := AllRunning(&tt.pod); got != tt.want {
			t.Errorf("%s: AllRunning = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// fakeAPI serves a pod list and one watch stream at a time, fed by the test.
type fakeAPI struct {
	mu       sync.Mutex
	list     []corev1.Pod
	rv       string
	watchRVs []string
	events   chan string   // raw watch event lines
	drop     chan struct{} // ends the current watch stream
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/pods" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	if r.URL.Query().Get("watch") != "true" {
		list := corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: f.rv}, Items: f.list}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(list)
		return
	}
	f.watchRVs = append(f.watchRVs, r.URL.Query().Get("resourceVersion"))
	f.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case ev := <-f.events:
			fmt.Fprintln(w, ev)
			w.(http.Flusher).Flush()
		case <-f.drop:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func event(typ string, p corev1.Pod) string {
	b, err := json.Marshal(map[string]any{"type": typ, "object": p})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestTracker(t *testing.T) {
	api := &fakeAPI{list: []corev1.Pod{pod("old", "u0", true)}, rv: "7", events: make(chan string), drop: make(chan struct{})}
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tr, err := Track(ctx, srv.URL, srv.Client())
	if err != nil {
		t.Fatalf("Track: %v", err)
	}
	if _, err := tr.WaitRunning(ctx, "old"); err != nil {
		t.Fatalf("WaitRunning(old) from the list: %v", err)
	}

	api.events <- event("ADDED", pod("a", "u1", false, false))
	api.events <- event("MODIFIED", pod("a", "u1", true, false))
	waitSeen(t, tr, "a")
	beforeRunning := time.Now()
	api.events <- event("MODIFIED", pod("a", "u1", true, true))
	at, err := tr.WaitRunning(ctx, "a")
	if err != nil {
		t.Fatalf("WaitRunning(a): %v", err)
	}
	if at.Running.Before(beforeRunning) {
		t.Errorf("pod a seen running at %v, before its containers all ran (%v)", at.Running, beforeRunning)
	}
	if at.Seen.IsZero() || !at.Seen.Before(beforeRunning) {
		t.Errorf("pod a first seen at %v, want before its containers all ran (%v)", at.Seen, beforeRunning)
	}
	// A later status change does not move the first instant.
	api.events <- event("MODIFIED", pod("a", "u1", true, true))
	if again, _ := tr.WaitRunning(ctx, "a"); again != at {
		t.Errorf("WaitRunning(a) moved from %v to %v", at, again)
	}

	// A pod that never runs times out with its state in the error.
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	api.events <- event("ADDED", pod("b", "u2", false, true))
	if _, err := tr.WaitRunning(short, "b"); err == nil {
		t.Error("WaitRunning(b) of a pod with a waiting container: want an error")
	}
	cancelShort()

	api.events <- event("DELETED", pod("a", "u1", true, true))
	if err := tr.WaitGone(ctx, []string{"a"}); err != nil {
		t.Fatalf("WaitGone(a): %v", err)
	}

	// The stream ends: the tracker lists again, which drops "old" and "b"
	// and brings "c", then watches from the new resourceVersion.
	api.mu.Lock()
	api.list, api.rv = []corev1.Pod{pod("c", "u3", true, true)}, "42"
	api.mu.Unlock()
	api.drop <- struct{}{}
	if err := tr.WaitGone(ctx, []string{"old", "b"}); err != nil {
		t.Fatalf("WaitGone after relist: %v", err)
	}
	if _, err := tr.WaitRunning(ctx, "c"); err != nil {
		t.Fatalf("WaitRunning(c) after relist: %v", err)
	}
	n, cause := tr.Reconnects()
	if n != 1 || cause == nil {
		t.Errorf("Reconnects = %d, %v; want 1 and the cause", n, cause)
	}
	api.events <- event("ADDED", pod("d", "u4", true))
	if _, err := tr.WaitRunning(ctx, "d"); err != nil {
		t.Fatalf("WaitRunning(d) on the new watch: %v", err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if diff := cmp.Diff([]string{"7", "42"}, api.watchRVs); diff != "" {
		t.Errorf("watch resourceVersions (-want +got):\n%s", diff)
	}
}

// waitSeen waits until the tracker has applied an event for the pod: a
// send on fakeAPI.events returns before the tracker has read it.
func waitSeen(t *testing.T, tr *Tracker, name string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		tr.mu.Lock()
		_, ok := tr.pods[name]
		changed := tr.changed
		tr.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("pod %q never seen", name)
		}
	}
}

func TestTrackFailsWithoutAPI(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := Track(context.Background(), srv.URL, srv.Client()); err == nil {
		t.Error("Track against a server without the pods API: want an error")
	}
}
