package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/runtime/fake"
)

// writeLog writes the log file the runtime would write for the running
// container name of pod uid (the fake runtime writes none).
func writeLog(t *testing.T, rt *fake.Runtime, uid types.UID, name string) {
	t.Helper()
	id, ok := rt.Running(uid, name)
	if !ok {
		t.Fatalf("container %s of pod %s not running", name, uid)
	}
	cfg, _ := rt.Config(id)
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.LogDir, "0.log")
	if err := os.WriteFile(path, []byte("2024-05-01T10:00:00Z stdout F hello\n"), 0o640); err != nil {
		t.Fatal(err)
	}
}

// logDirs lists the pod log directories under root.
func logDirs(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestReplacedAndRemovedPodsLoseTheirLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		e := newEnv(t, rt, "")
		root := t.TempDir()
		e.m.cfg.LogRoot = root
		other := newTestPod("other", corev1.RestartPolicyAlways, "app")
		other.Name = "other"
		old := newTestPod("old", corev1.RestartPolicyAlways, "app")
		e.m.SetDesired([]*corev1.Pod{other, old})
		e.run()
		defer e.stop()
		writeLog(t, rt, "other", "app")
		writeLog(t, rt, "old", "app")
		if diff := cmp.Diff([]string{"default_other_other", "default_web_old"}, logDirs(t, root)); diff != "" {
			t.Fatalf("log directories before (-want +got):\n%s", diff)
		}

		// A manifest edit: the same pod under a new UID.
		changed := newTestPod("new", corev1.RestartPolicyAlways, "app")
		changed.Spec.Containers[0].Args = []string{"--v2"}
		e.m.SetDesired([]*corev1.Pod{other, changed})
		advance(30 * time.Second)
		writeLog(t, rt, "new", "app")
		if diff := cmp.Diff([]string{"default_other_other", "default_web_new"}, logDirs(t, root)); diff != "" {
			t.Errorf("log directories after the replacement (-want +got):\n%s", diff)
		}

		// Removed from the manifests.
		e.m.SetDesired([]*corev1.Pod{other})
		advance(30 * time.Second)
		if e.pub.get("new") != nil {
			t.Fatal("removed pod still published")
		}
		if diff := cmp.Diff([]string{"default_other_other"}, logDirs(t, root)); diff != "" {
			t.Errorf("log directories after the removal (-want +got):\n%s", diff)
		}
	})
}

// Pods that went while the agent was down leave log directories no worker
// will clean up: the agent removes them once it knows the desired pods,
// and not before.
func TestLogsOfPodsGoneWhileDownRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		rt.IgnoreSIGTERM("app", true) // the orphan takes its grace period
		root := t.TempDir()
		for _, rel := range []string{
			"default_web_u1/app/0.log",    // desired again
			"default_gone_u9/app/3.log",   // gone: nothing in the runtime
			"default_orphan_u7/app/0.log", // not desired, still running
			"lost+found/x",                // not a pod's
		} {
			p := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("x\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		// The orphan still runs in the runtime, as the last agent left it.
		ctx := context.Background()
		ref := runtime.PodRef{UID: "u7", Namespace: "default", Name: "orphan"}
		sb, err := rt.RunSandbox(ctx, runtime.SandboxConfig{Pod: ref})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.StartContainer(ctx, runtime.ContainerConfig{Pod: ref, Sandbox: sb,
			Spec: corev1.Container{Name: "app", Image: "busybox:1.36"}, Image: fake.ImageFor("busybox:1.36"),
			LogDir: filepath.Join(root, "default_orphan_u7", "app")}); err != nil {
			t.Fatal(err)
		}

		e := newEnv(t, rt, "")
		e.m.cfg.LogRoot = root
		e.run()
		defer e.stop()
		all := []string{"default_gone_u9", "default_orphan_u7", "default_web_u1", "lost+found"}
		if diff := cmp.Diff(all, logDirs(t, root)); diff != "" {
			t.Errorf("before the desired pods are known (-want +got):\n%s", diff)
		}

		e.m.SetDesired([]*corev1.Pod{newTestPod("u1", corev1.RestartPolicyAlways, "app")})
		advance(DefaultRelist)
		// The orphan is being stopped (30 s grace): its logs stay while
		// its containers do.
		if diff := cmp.Diff([]string{"default_orphan_u7", "default_web_u1", "lost+found"}, logDirs(t, root)); diff != "" {
			t.Errorf("after the first relist (-want +got):\n%s", diff)
		}
		advance(30 * time.Second)
		if diff := cmp.Diff([]string{"default_web_u1", "lost+found"}, logDirs(t, root)); diff != "" {
			t.Errorf("after the orphan stopped (-want +got):\n%s", diff)
		}
		if _, err := os.Stat(filepath.Join(root, "default_web_u1", "app", "0.log")); err != nil {
			t.Errorf("the desired pod's log: %v", err)
		}
	})
}
