package fake

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

var pod = runtime.PodRef{UID: "u1", Namespace: "default", Name: "web"}

func TestEnsureImage(t *testing.T) {
	r := New()
	r.AddImage("present:1")
	r.SetPullable("remote:1")
	r.SetPullError("broken:1", errors.New("connection refused"))
	tests := []struct {
		image   string
		policy  corev1.PullPolicy
		wantErr error
	}{
		{"present:1", corev1.PullNever, nil},
		{"present:1", corev1.PullIfNotPresent, nil},
		{"absent:1", corev1.PullNever, runtime.ErrImageNeverPull},
		{"remote:1", corev1.PullIfNotPresent, nil},
		{"broken:1", corev1.PullAlways, &runtime.PullError{}},
		{"unknown:1", corev1.PullIfNotPresent, &runtime.PullError{}},
	}
	for _, tt := range tests {
		t.Run(tt.image+"/"+string(tt.policy), func(t *testing.T) {
			img, err := r.EnsureImage(context.Background(), tt.image, tt.policy)
			var pe *runtime.PullError
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("EnsureImage: %v", err)
			case tt.wantErr == runtime.ErrImageNeverPull && !errors.Is(err, runtime.ErrImageNeverPull):
				t.Fatalf("EnsureImage error = %v, want ErrImageNeverPull", err)
			case tt.wantErr != nil && tt.wantErr != runtime.ErrImageNeverPull && !errors.As(err, &pe):
				t.Fatalf("EnsureImage error = %v, want a *PullError", err)
			case tt.wantErr == nil && img != ImageFor(tt.image):
				t.Errorf("image = %+v", img)
			}
		})
	}
}

func TestContainerLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		r := New()
		events, err := r.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.RunSandbox(ctx, runtime.SandboxConfig{Pod: pod, Hostname: "web"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		st, err := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Spec: corev1.Container{Name: "app"}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if err := r.OOMKill(st.ID); err != nil {
			t.Fatal(err)
		}
		got := []runtime.Event{<-events, <-events}
		want := []runtime.Event{
			{Type: runtime.EventContainerOOM, ContainerID: st.ID, PodUID: pod.UID},
			{Type: runtime.EventContainerExited, ContainerID: st.ID, PodUID: pod.UID},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		list, _ := r.ListContainers(ctx)
		wantStatus := st
		wantStatus.State, wantStatus.ExitCode, wantStatus.OOMKilled = runtime.ContainerExited, 137, true
		wantStatus.FinishedAt = start.Add(5 * time.Second)
		if diff := cmp.Diff([]runtime.ContainerStatus{wantStatus}, list); diff != "" {
			t.Errorf("containers (-want +got):\n%s", diff)
		}
		if err := r.RemoveSandbox(ctx, pod); err == nil {
			t.Error("RemoveSandbox with a container left succeeded")
		}
		if err := r.RemoveContainer(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
		if err := r.RemoveSandbox(ctx, pod); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStopHonorsGrace(t *testing.T) {
	tests := []struct {
		name     string
		ignore   bool
		wantCode int32
		wantTook time.Duration
	}{
		{"exits on SIGTERM", false, 143, 0},
		{"ignores SIGTERM: killed after grace", true, 137, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				r := New()
				r.IgnoreSIGTERM("app", tt.ignore)
				r.RunSandbox(ctx, runtime.SandboxConfig{Pod: pod})
				st, _ := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Spec: corev1.Container{Name: "app"}})
				start := time.Now()
				if err := r.StopContainer(ctx, st.ID, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took != tt.wantTook {
					t.Errorf("stop took %v, want %v", took, tt.wantTook)
				}
				list, _ := r.ListContainers(ctx)
				if list[0].ExitCode != tt.wantCode || list[0].State != runtime.ContainerExited {
					t.Errorf("after stop: %+v", list[0])
				}
			})
		})
	}
}

func TestStartFailure(t *testing.T) {
	ctx := context.Background()
	r := New()
	r.RunSandbox(ctx, runtime.SandboxConfig{Pod: pod})
	r.FailStart("app", `exec: "nope": executable file not found in $PATH`)
	st, err := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Spec: corev1.Container{Name: "app"}})
	if err == nil {
		t.Fatal("StartContainer succeeded")
	}
	if st.ID == "" || st.State != runtime.ContainerExited || st.Reason != "StartError" || st.ExitCode != 128 {
		t.Errorf("status = %+v, want an exited StartError instance", st)
	}
	r.FailCreate("app", errors.New("bad spec"))
	if st, err := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Spec: corev1.Container{Name: "app"}}); err == nil || st.ID != "" {
		t.Errorf("create failure: status %+v, err %v", st, err)
	}
}

func TestListCostAndCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		r := New()
		r.AddImage("busybox:1.36")
		if _, err := r.RunSandbox(ctx, runtime.SandboxConfig{Pod: pod}); err != nil {
			t.Fatal(err)
		}
		sb, _ := r.ListSandboxes(ctx)
		for _, name := range []string{"a", "b"} {
			if _, err := r.StartContainer(ctx, runtime.ContainerConfig{Pod: pod, Sandbox: sb[0], Spec: corev1.Container{Name: name, Image: "busybox:1.36"}}); err != nil {
				t.Fatal(err)
			}
		}
		r.SetListCost(10 * time.Millisecond)
		start := time.Now()
		if _, err := r.ListContainers(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ListContainers(ctx); err != nil {
			t.Fatal(err)
		}
		type counts struct{ Calls, Instances int }
		calls, instances := r.ListCount()
		if diff := cmp.Diff(counts{2, 4}, counts{calls, instances}); diff != "" {
			t.Errorf("ListCount (-want +got):\n%s", diff)
		}
		if took := time.Since(start); took != 40*time.Millisecond {
			t.Errorf("two lists of 2 instances took %v, want 40ms", took)
		}
	})
}
