package fake

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

func TestContainerStatsOnlyRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		r := New()
		r.AddImage("busybox:1.36")
		img := ImageFor("busybox:1.36")
		if _, err := r.RunSandbox(ctx, runtime.SandboxConfig{Pod: pod, Hostname: "web"}); err != nil {
			t.Fatal(err)
		}
		app, err := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Spec: corev1.Container{Name: "app"}, Image: img})
		if err != nil {
			t.Fatal(err)
		}
		gone, err := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Spec: corev1.Container{Name: "gone"}, Image: img})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SetUsage(app.ID, runtime.ContainerStats{CPUUsageNanoseconds: 5e8, MemoryWorkingSetBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		if err := r.SetUsage("nope", runtime.ContainerStats{}); err == nil {
			t.Error("SetUsage of an unknown container succeeded")
		}
		if err := r.Exit(gone.ID, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		got, err := r.ContainerStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []runtime.ContainerStats{{
			Pod: pod, Name: "app", ID: app.ID, Image: "busybox:1.36",
			Timestamp: time.Now(), StartedAt: app.StartedAt,
			CPUUsageNanoseconds: 5e8, MemoryWorkingSetBytes: 1 << 20,
		}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ContainerStats (-want +got):\n%s", diff)
		}
	})
}
