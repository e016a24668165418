package podbench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// TestIntegrationResources runs a miniature resources benchmark on the real
// node and checks that every figure was taken and that the node left
// nothing behind. It asserts no timing and no share: the figures are the
// benchmark's business.
func TestIntegrationResources(t *testing.T) {
	bin, listen := benchNode(t)

	work := t.TempDir()
	cfg := ResourcesConfig{
		Devnode: filepath.Join(bin, "devnode"), Mkimage: filepath.Join(bin, "mkimage"), Runc: filepath.Join(bin, "runc"),
		Busybox: "/bin/busybox", Arch: runtime.GOARCH,
		Work: work, Listen: listen,
		CPULimits: []string{"100m"}, CPUWarmUp: 100 * time.Millisecond, CPUWindow: time.Second, CPUSamples: 2,
		OOMRuns: 2, OOMLimit: "32Mi",
		MetricsPods: 2, MetricsWindow: 2 * time.Second, ScrapeEvery: time.Second, Settle: 100 * time.Millisecond,
		PodTimeout: time.Minute, PowerOffTimeout: 3 * time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := RunResources(ctx, cfg)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "devnode.log"))
		t.Fatalf("RunResources: %v\ndevnode.log:\n%s", err, log)
	}

	if len(res.CPU) != 1 || len(res.CPU[0].Shares) != 2 || len(res.CPU[0].Throttled) != 2 || res.CPU[0].Cgroup == "" {
		t.Errorf("CPU figures %+v, want one limit with 2 windows and their throttling", res.CPU)
	}
	if len(res.OOM) != 2 || res.OOMMax <= 0 {
		t.Errorf("OOM figures %v (max %v), want 2 positive latencies", res.OOM, res.OOMMax)
	}
	if res.MetricsPods != 2 || res.Scrapes == 0 || res.CadvisorBytes == 0 || res.MetricsBytes == 0 {
		t.Errorf("metrics figures: %d pods, %d scrapes, cadvisor %d bytes, metrics %d bytes; want 2 pods and some of each",
			res.MetricsPods, res.Scrapes, res.CadvisorBytes, res.MetricsBytes)
	}

	proc, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	node := Node{Proc: proc, StateDir: filepath.Join(work, "state")}
	if procs, err := node.Processes(); err != nil || len(procs) > 0 {
		t.Errorf("after RunResources the node's processes are %v (%v), want none", procs, err)
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		t.Fatal(err)
	}
	if left := MountsUnder(mounts, work); len(left) > 0 {
		t.Errorf("after RunResources these remain mounted: %v", left)
	}
}
