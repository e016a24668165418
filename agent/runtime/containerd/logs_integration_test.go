package containerd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/reconcile"
)

// nopPublisher and nopRecorder stand in for the store: these tests look at
// the log files only.
type nopPublisher struct{}

func (nopPublisher) PublishPod(*corev1.Pod)              {}
func (nopPublisher) RemovePod(string, string, types.UID) {}

type nopRecorder struct{}

func (nopRecorder) Eventf(k8sruntime.Object, string, string, string, ...any) {}
func (nopRecorder) EventfOnField(k8sruntime.Object, string, string, string, string, ...any) {
}

// runManager runs the agent's pod manager on the harness's Runtime, with
// the logs where the agent keeps them; it stops with the test.
func (h *harness) runManager(t *testing.T, logRoot string) *reconcile.Manager {
	t.Helper()
	m, err := reconcile.NewManager(reconcile.Config{
		Runtime: h.r, Pods: nopPublisher{}, Events: nopRecorder{},
		LogRoot: logRoot, NodeName: "board", Relist: time.Second,
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer stopCancel()
		if err := m.StopAll(stopCtx); err != nil {
			t.Errorf("stop pods: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pod manager: %v", err)
		}
	})
	return m
}

func logTestPod(uid, name string, command ...string) *corev1.Pod {
	grace := int64(2)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid)},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "app", Image: "busybox:1.36", ImagePullPolicy: corev1.PullNever, Command: command,
			}},
		},
	}
}

// logFiles lists a directory's entries (nil when it is missing).
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// The logs of a pod's container instances follow kubelet's container GC:
// the current and the previous instance are kept, older ones go with
// their containers, and a pod replaced by a manifest edit (a new UID)
// leaves no log directory behind.
func TestIntegrationContainerLogRetention(t *testing.T) {
	h := newHarness(t)
	h.importImage(t, "busybox:1.36")
	root := filepath.Join(h.env.StateDir, "pods")
	m := h.runManager(t, root)

	t.Run("crash loop keeps the current and the previous attempt", func(t *testing.T) {
		// Restarts: at once, then after 10 s: attempt 2 starts about
		// 10 s in. Each attempt lives a second, so the files are
		// looked at while it runs.
		pod := logTestPod("uid-crash", "crash", "sh", "-c", "echo crashing; sleep 1; exit 1")
		m.SetDesired([]*corev1.Pod{pod})
		dir := filepath.Join(root, "default_crash_uid-crash", "app")
		deadline := time.Now().Add(40 * time.Second)
		var seen [][]string
		for {
			files := logFiles(t, dir)
			if len(seen) == 0 || !slices.Equal(seen[len(seen)-1], files) {
				seen = append(seen, files)
			}
			if len(files) > 2 {
				t.Fatalf("log files %q: more than the current and the previous attempt (seen %q)", files, seen)
			}
			if slices.Equal(files, []string{"1.log", "2.log"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("attempt 2 never ran beside attempt 1's log; seen %q", seen)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// kubectl logs --previous reads attempt 1's file.
		b, err := os.ReadFile(filepath.Join(dir, "1.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), " stdout F crashing\n") {
			t.Errorf("attempt 1's log = %q, want its output", b)
		}
	})

	t.Run("a replaced pod's log directory goes", func(t *testing.T) {
		old := logTestPod("uid-web-1", "web", "sh", "-c", "echo v1; exec sleep 3600")
		m.SetDesired([]*corev1.Pod{old})
		oldDir := filepath.Join(root, "default_web_uid-web-1")
		if !waitFor(func() bool {
			b, _ := os.ReadFile(filepath.Join(oldDir, "app", "0.log"))
			return strings.Contains(string(b), " stdout F v1\n")
		}) {
			t.Fatalf("the first pod never logged; pod log directories: %q", logFiles(t, root))
		}

		// A manifest edit: the same pod under a new UID. The crash-loop
		// pod is no longer desired either.
		changed := logTestPod("uid-web-2", "web", "sh", "-c", "echo v2; exec sleep 3600")
		m.SetDesired([]*corev1.Pod{changed})
		newDir := filepath.Join(root, "default_web_uid-web-2")
		if !waitFor(func() bool {
			b, _ := os.ReadFile(filepath.Join(newDir, "app", "0.log"))
			return strings.Contains(string(b), " stdout F v2\n")
		}) {
			t.Fatalf("the replacement never logged; pod log directories: %q", logFiles(t, root))
		}
		waitFor(func() bool {
			return slices.Equal(logFiles(t, root), []string{"default_web_uid-web-2"})
		})
		if diff := cmp.Diff([]string{"default_web_uid-web-2"}, logFiles(t, root)); diff != "" {
			t.Errorf("pod log directories (-want +got):\n%s", diff)
		}
	})
}

// waitFor polls cond for up to 30 s (the processes are real; a replaced
// pod takes its 2 s grace period) and reports whether it came true.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
