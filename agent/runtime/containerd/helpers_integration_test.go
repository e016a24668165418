package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/internal/testenv"
)

// harness is a Runtime on a private containerd with the stand-in images.
type harness struct {
	env *testenv.Env
	r   *Runtime
	ctx context.Context
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	env := testenv.Containerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	h := &harness{env: env, ctx: ctx}
	h.r = h.open(t)
	return h
}

// open makes a new Runtime over the same containerd and state (as a
// restarted agent would).
func (h *harness) open(t testing.TB) *Runtime {
	t.Helper()
	r, err := New(h.ctx, Config{Address: h.env.Address(), StateDir: h.env.StateDir, RuncPath: h.env.RuncPath, RuncRoot: h.env.RuncRoot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (h *harness) importImage(t testing.TB, tag string) runtime.Image {
	t.Helper()
	if _, err := h.r.ImportArchive(h.ctx, testenv.Image(t, tag)); err != nil {
		t.Fatal(err)
	}
	img, err := h.r.EnsureImage(h.ctx, tag, corev1.PullNever)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func testPod(name string) runtime.PodRef {
	return runtime.PodRef{UID: types.UID("uid-" + name), Namespace: "default", Name: name}
}

func (h *harness) sandbox(t testing.TB, pod runtime.PodRef) runtime.Sandbox {
	t.Helper()
	sb, err := h.r.RunSandbox(h.ctx, runtime.SandboxConfig{Pod: pod, Hostname: pod.Name})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// containerConfig is a container of the pod running img.
func (h *harness) containerConfig(pod runtime.PodRef, sb runtime.Sandbox, img runtime.Image, spec corev1.Container) runtime.ContainerConfig {
	spec.Image = img.Ref
	return runtime.ContainerConfig{
		Pod: pod, Sandbox: sb, Spec: spec, Image: img,
		LogDir:                 filepath.Join(h.env.StateDir, "pods", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID), spec.Name),
		TerminationGracePeriod: 30 * time.Second,
	}
}

func (h *harness) start(t testing.TB, cfg runtime.ContainerConfig) runtime.ContainerStatus {
	t.Helper()
	st, err := h.r.StartContainer(h.ctx, cfg)
	if err != nil {
		t.Fatalf("StartContainer(%s): %v", cfg.Spec.Name, err)
	}
	return st
}

// find returns the container's status from ListContainers.
func (h *harness) find(t testing.TB, r *Runtime, id string) (runtime.ContainerStatus, bool) {
	t.Helper()
	list, err := r.ListContainers(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == id {
			return c, true
		}
	}
	return runtime.ContainerStatus{}, false
}

// waitExited polls the container until it has exited (bounded: the
// processes under test are real).
func (h *harness) waitExited(t testing.TB, id string) runtime.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, ok := h.find(t, h.r, id)
		if !ok {
			t.Fatalf("container %s is gone", id)
		}
		if st.State == runtime.ContainerExited {
			h.r.waitCopier(h.ctx, id)
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not exit: %+v", id, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLog returns the container's log as plain lines.
func readLog(t testing.TB, cfg runtime.ContainerConfig) string {
	t.Helper()
	var b bytes.Buffer
	path := filepath.Join(cfg.LogDir, fmt.Sprintf("%d.log", cfg.Attempt))
	if err := logs.Read(context.Background(), path, logs.ReadOptions{TailLines: -1}, &b); err != nil {
		t.Fatalf("read log %s: %v", path, err)
	}
	return b.String()
}

// waitLog polls the log until it contains want.
func waitLog(t testing.TB, cfg runtime.ContainerConfig, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := ""
		if _, err := os.Stat(filepath.Join(cfg.LogDir, fmt.Sprintf("%d.log", cfg.Attempt))); err == nil {
			got = readLog(t, cfg)
		}
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %s never contained %q; it is:\n%s", cfg.Spec.Name, want, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func int64p(v int64) *int64 { return &v }
func boolp(v bool) *bool    { return &v }
