package containerd

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestIntegrationStopWithStuckLogStream reproduces the benchmark's hang:
// the task exits but its stdout FIFO never reaches EOF, because something
// else still holds its write end (here the test; in the field a leaked
// writer or a shim that never opened the FIFO). Stop and Remove must
// return after a bounded drain instead of waiting on the copier forever.
func TestIntegrationStopWithStuckLogStream(t *testing.T) {
	h := newHarness(t)
	busybox := h.importImage(t, "busybox:1.36")
	pod := testPod("stuck")
	sb := h.sandbox(t, pod)
	cfg := h.containerConfig(pod, sb, busybox, corev1.Container{
		Name:    "stuck",
		Command: []string{"sh", "-c", "echo ready; while :; do sleep 1; done"},
	})
	st := h.start(t, cfg)
	waitLog(t, cfg, "ready")

	// A second writer keeps the FIFO open after the shim closes its end.
	fifo := filepath.Join(h.env.StateDir, "fifo", st.ID, "stdout")
	w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("hold the stdout FIFO open: %v", err)
	}
	defer w.Close()

	const bound = drainTimeout + 5*time.Second
	begin := time.Now()
	if err := h.r.StopContainer(h.ctx, st.ID, time.Second); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if took := time.Since(begin); took > bound {
		t.Errorf("StopContainer took %v, want at most %v", took, bound)
	}
	if h.r.hasCopier(st.ID) {
		t.Errorf("the stuck copier is still attached after StopContainer")
	}
	if got := readLog(t, cfg); got == "" {
		t.Errorf("log lost: want the lines written before the stop")
	}
	begin = time.Now()
	if err := h.r.RemoveContainer(h.ctx, st.ID); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if took := time.Since(begin); took > bound {
		t.Errorf("RemoveContainer took %v, want at most %v", took, bound)
	}
	if _, ok := h.find(t, h.r, st.ID); ok {
		t.Errorf("container %s is still listed after RemoveContainer", st.ID)
	}
	// The log goes with the instance (kubelet's removeContainerLog).
	if _, err := os.Stat(filepath.Join(cfg.LogDir, "0.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log of the removed container: %v, want it gone", err)
	}
}
