package containerd

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkIntegrationStartContainer measures StartContainer (NewContainer
// with its snapshot and spec, FIFOs, NewTask, Wait, Start) for a sleeping
// busybox in a pod with one pinned sandbox. Removal is not timed.
func BenchmarkIntegrationStartContainer(b *testing.B) {
	h := newHarness(b)
	img := h.importImage(b, "busybox:1.36")
	pod := testPod("bench")
	sb := h.sandbox(b, pod)
	cfg := h.containerConfig(pod, sb, img, corev1.Container{Name: "sleep", Command: []string{"sleep", "3600"}})
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		cfg.Attempt = int32(i)
		begin := time.Now()
		st := h.start(b, cfg)
		total += time.Since(begin)
		b.StopTimer()
		if err := h.r.StopContainer(h.ctx, st.ID, 0); err != nil {
			b.Fatal(err)
		}
		if err := h.r.RemoveContainer(h.ctx, st.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/start")
}
