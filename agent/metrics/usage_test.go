package metrics

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// busierStat is testdata/proc/stat one second later with one core busy
// (100 more user ticks) and the other idle.
const busierStat = `cpu  1100 10 400 8100 50 5 20 3 0 0
cpu0 700 10 200 3900 30 5 10 2 0 0
cpu1 400 0 200 4200 20 0 10 1 0 0
btime 1795529582
`

type usageSummary struct {
	Name   string
	Window time.Duration
	CPU    string
	Memory string
}

func summarize(name string, window time.Duration, u corev1.ResourceList) usageSummary {
	return usageSummary{Name: name, Window: window, CPU: u.Cpu().String(), Memory: u.Memory().String()}
}

// TestFirstRequestSamplesTwice: without a kept sample, a request samples,
// waits a second and samples again, so the first `kubectl top` has rates.
func TestFirstRequestSamplesTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.setUsage(t, "app", 1.5, 4<<20)
		f.setUsage(t, "dns", 10, 1<<20)
		done := make(chan []PodMetrics)
		go func() {
			pods, err := f.m.PodMetrics(context.Background(), "")
			if err != nil {
				t.Error(err)
			}
			done <- pods
		}()
		synctest.Wait() // blocked in the one-second wait
		f.setUsage(t, "app", 2.0, 5<<20)
		f.setUsage(t, "dns", 10.25, 1<<20)
		f.writeProc(t, "stat", busierStat)
		pods := <-done

		var got []usageSummary
		for _, p := range pods {
			for _, c := range p.Containers {
				got = append(got, summarize(p.Namespace+"/"+p.Name+"/"+c.Name, p.Window.Duration, c.Usage))
			}
		}
		want := []usageSummary{
			{"default/web/app", time.Second, "500m", "5Mi"},
			{"default/web/side", time.Second, "0", "0"},
			{"kube-system/dns/dns", time.Second, "250m", "1Mi"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("pod usage (-want +got):\n%s", diff)
		}
		if pods[0].Labels["app"] != "web" || pods[0].Kind != "PodMetrics" || pods[0].APIVersion != "metrics.k8s.io/v1beta1" {
			t.Errorf("pod metrics meta = %+v %+v", pods[0].TypeMeta, pods[0].ObjectMeta)
		}

		// A second later the kept samples serve at once: the window is the
		// two seconds since the first sample.
		time.Sleep(time.Second)
		start := time.Now()
		node, err := f.m.NodeMetrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 {
			t.Errorf("NodeMetrics waited %v with samples kept", time.Since(start))
		}
		if diff := cmp.Diff(summarize("board-1", 2*time.Second, corev1.ResourceList{
			corev1.ResourceCPU: mustQuantity("500m"), corev1.ResourceMemory: mustQuantity("1000000Ki"),
		}), summarize(node.Name, node.Window.Duration, node.Usage)); diff != "" {
			t.Errorf("node usage (-want +got):\n%s", diff)
		}
		if node.Labels["kubernetes.io/os"] != "linux" || node.Kind != "NodeMetrics" {
			t.Errorf("node metrics meta = %+v %+v", node.TypeMeta, node.ObjectMeta)
		}
	})
}

// TestWindows: kept samples give windows of about targetWindow; samples
// older than maxWindow are not used.
func TestWindows(t *testing.T) {
	tests := []struct {
		name string
		gaps []time.Duration // between requests
		want []time.Duration // each request's window
	}{
		{"first request", nil, []time.Duration{time.Second}},
		{"quick repeats keep the first base", []time.Duration{100 * time.Millisecond, 5 * time.Second}, []time.Duration{time.Second, 1100 * time.Millisecond, 6100 * time.Millisecond}},
		{"steady 10 s requests", []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second}, []time.Duration{time.Second, 11 * time.Second, 20 * time.Second, 30 * time.Second, 20 * time.Second}},
		{"stale samples are resampled", []time.Duration{2 * time.Minute}, []time.Duration{time.Second, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				var got []time.Duration
				for i := 0; i <= len(tt.gaps); i++ {
					if i > 0 {
						time.Sleep(tt.gaps[i-1])
					}
					n, err := f.m.NodeMetrics(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, n.Window.Duration)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("windows (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestNamespaceFilterAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		pods, err := f.m.PodMetrics(context.Background(), "kube-system")
		if err != nil {
			t.Fatal(err)
		}
		if len(pods) != 1 || pods[0].Name != "dns" {
			t.Errorf("kube-system pods = %+v", pods)
		}
		f.writeProc(t, "meminfo", "MemFree: 1 kB\n")
		if _, err := f.m.NodeMetrics(context.Background()); err == nil || !strings.Contains(err.Error(), "MemAvailable") {
			t.Errorf("NodeMetrics without MemAvailable: err = %v", err)
		}
	})
}
