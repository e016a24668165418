package nodetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/mountinfo"
	corev1 "k8s.io/api/core/v1"

	ctrdruntime "github.com/podboot/podboot/agent/runtime/containerd"
	cdlayout "github.com/podboot/podboot/init/containerd"
)

// TestIntegrationGarbageAtStart kills the agent and one pod's shim and
// container processes, as the OOM killer or a crash would, and checks that
// the restarted agent leaves nothing of that pod behind while the other
// pod, whose shim lives, keeps running untouched.
func TestIntegrationGarbageAtStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// cutShort: the agent was killed in the middle of the pod's
		// cleanup, after it had deleted the containers and the sandbox
		// record but before the namespaces, volumes and pod files.
		cutShort bool
		// containerd is killed too: at its restart it drops the dead
		// shim's tasks, and the pod's containers have no task at all.
		killContainerd bool
		// keep: the pod stays in the manifests, so the restarted agent
		// restarts its containers; what the dead ones held must go.
		keep bool
		// wait: the leftovers go at the agent's start (0), or with the pod
		// once the restarted agent has seen it is gone.
		wait time.Duration
	}{
		{name: "cleanup cut short", cutShort: true},
		{name: "containerd killed too", killContainerd: true, wait: 30 * time.Second},
		{name: "pod kept", keep: true, wait: 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t)
			n.writeManifest("doomed.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: doomed}
spec:
  volumes:
  - {name: mem, emptyDir: {medium: Memory}}
  containers:
  - {name: a, image: "busybox:1.36", command: ["sh", "-c", "while true; do sleep 1; done"], volumeMounts: [{name: mem, mountPath: /mem}]}
  - {name: b, image: "busybox:1.36", command: ["sh", "-c", "while true; do sleep 1; done"]}
`)
			n.writeManifest("survivor.yaml", `
apiVersion: v1
kind: Pod
metadata: {name: survivor}
spec:
  volumes:
  - {name: mem, emptyDir: {medium: Memory}}
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "while true; do sleep 1; done"], volumeMounts: [{name: mem, mountPath: /mem}]}
`)
			doomed := n.waitPod("doomed", time.Minute, "Running", running)
			survivor := n.waitPod("survivor", time.Minute, "Running", running)
			doomedState := podState(t, n.state, string(doomed.UID))
			survivorState := podState(t, n.state, string(survivor.UID))
			for name, st := range map[string]podLeftovers{"doomed": doomedState, "survivor": survivorState} {
				if len(st.mounts) < 4 || len(st.cgroups) == 0 {
					t.Fatalf("%s before the kill: mounts %v cgroups %v; want its namespaces, its volume and its cgroups", name, st.mounts, st.cgroups)
				}
			}
			var old []string // the containers that die
			for _, c := range doomed.Status.ContainerStatuses {
				old = append(old, strings.TrimPrefix(c.ContainerID, "containerd://"))
			}
			if got := containerLeftovers(t, n.state, old); len(got) < 2*2 {
				t.Fatalf("the doomed containers' rootfs mounts and cgroups before the kill: %v", got)
			}
			_, survivorShims := podProcesses(string(survivor.UID))
			if len(survivorShims) == 0 {
				t.Fatal("no shim found for the survivor")
			}

			// devnode's supervisor is held while the scene is set, so that
			// the services come back only once it is.
			if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			resumed := false
			resume := func() {
				if !resumed {
					resumed = true
					if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
						t.Error(err)
					}
				}
			}
			defer resume()
			agents := procsOf("podagent", "--state "+n.state+" ")
			if len(agents) != 1 {
				t.Fatalf("podagent processes of this node: %v, want one", agents)
			}
			syscall.Kill(agents[0], syscall.SIGKILL)
			if tc.killContainerd {
				daemons := procsOf("bin/containerd ", n.state+"/")
				if len(daemons) != 1 {
					t.Fatalf("containerd processes of this node: %v, want one", daemons)
				}
				syscall.Kill(daemons[0], syscall.SIGKILL)
			}
			pids, shims := podProcesses(string(doomed.UID))
			for _, p := range append(pids, shims...) {
				syscall.Kill(p, syscall.SIGKILL)
			}
			if !tc.keep {
				n.removeManifest("doomed.yaml")
			}
			if tc.cutShort {
				if err := deletePodContainers(n.state, string(doomed.UID)); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(n.state, "sandboxes", string(doomed.UID)+".json")); err != nil {
					t.Fatal(err)
				}
			}
			resume()
			n.waitAgentBack(t, agents[0])

			if tc.keep {
				// The dead containers' rootfs mounts and cgroups go; the
				// pod runs again in new ones.
				again := n.waitPod("doomed", tc.wait, "Running with both containers restarted", func(p *corev1.Pod) bool {
					return running(p) && containerStatus(p, "a").RestartCount > 0 && containerStatus(p, "b").RestartCount > 0
				})
				if cs := containerStatus(again, "a"); cs.LastTerminationState.Terminated == nil {
					t.Errorf("container a restarted without a last termination state: %+v", cs)
				}
			} else {
				var got podLeftovers
				for deadline := time.Now().Add(tc.wait); ; time.Sleep(200 * time.Millisecond) {
					got = podState(t, n.state, string(doomed.UID))
					if len(got.mounts)+len(got.dirs)+len(got.cgroups) == 0 || time.Now().After(deadline) {
						break
					}
				}
				if len(got.mounts)+len(got.dirs)+len(got.cgroups) > 0 {
					t.Errorf("the dead pod's leftovers:\nmounts %v\ndirectories %v\ncgroups %v\n%s",
						got.mounts, got.dirs, got.cgroups, tail(n.stderr.String(), 30))
				}
				if _, ok := n.getPod("default", "doomed"); ok {
					t.Error("the dead pod is still listed")
				}
			}
			if got := containerLeftovers(t, n.state, old); len(got) > 0 {
				t.Errorf("the dead containers' rootfs mounts and cgroups are left: %v", got)
			}
			if got := podState(t, n.state, string(survivor.UID)); !slices.Equal(got.mounts, survivorState.mounts) || !slices.Equal(got.cgroups, survivorState.cgroups) {
				t.Errorf("the live pod's mounts or cgroups changed:\nbefore %v %v\nafter  %v %v", survivorState.mounts, survivorState.cgroups, got.mounts, got.cgroups)
			}
			for _, s := range survivorShims {
				if err := syscall.Kill(s, 0); err != nil {
					t.Errorf("the live pod's shim %d: %v", s, err)
				}
			}
			after := n.waitPod("survivor", 30*time.Second, "Running", running)
			b, a := containerStatus(survivor, "main"), containerStatus(after, "main")
			if a.ContainerID != b.ContainerID || a.RestartCount != b.RestartCount || !a.State.Running.StartedAt.Equal(&b.State.Running.StartedAt) {
				t.Errorf("the live pod's container was touched: before %s restarts %d started %v, after %s restarts %d started %v",
					b.ContainerID, b.RestartCount, b.State.Running.StartedAt, a.ContainerID, a.RestartCount, a.State.Running.StartedAt)
			}
		})
	}
}

// containerLeftovers lists the mounts and cgroups, anywhere, named by one
// of the container IDs.
func containerLeftovers(t *testing.T, state string, ids []string) []string {
	t.Helper()
	var out []string
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(state))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, id := range ids {
			if strings.Contains(m.Mountpoint, id) {
				out = append(out, m.Mountpoint)
			}
		}
	}
	for _, id := range ids {
		for _, pattern := range []string{"/sys/fs/cgroup/*/podboot-devnode-*/kubepods/*/*/" + id, "/sys/fs/cgroup/podboot-devnode-*/kubepods/*/*/" + id} {
			matches, _ := filepath.Glob(pattern)
			out = append(out, matches...)
		}
	}
	return out
}

// podLeftovers is what the node holds of a pod: mounts and directories
// under the state directory, cgroups in any hierarchy.
type podLeftovers struct {
	mounts, dirs, cgroups []string
}

func podState(t *testing.T, state, uid string) podLeftovers {
	t.Helper()
	var st podLeftovers
	for _, d := range []string{"netns", "kubelet/pods", "podfiles"} {
		dir := filepath.Join(state, d, uid)
		ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			st.mounts = append(st.mounts, m.Mountpoint)
		}
		if _, err := os.Stat(dir); err == nil {
			st.dirs = append(st.dirs, dir)
		}
	}
	slices.Sort(st.mounts)
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	for _, h := range hierarchies {
		matches, _ := filepath.Glob(filepath.Join(h, "podboot-devnode-*", "kubepods", "*", "pod"+uid))
		more, _ := filepath.Glob(filepath.Join(h, "podboot-devnode-*", "kubepods", "pod"+uid))
		st.cgroups = append(st.cgroups, append(matches, more...)...)
	}
	slices.Sort(st.cgroups)
	return st
}

// podProcesses lists the processes in the pod's cgroups and the shims
// that parent them.
func podProcesses(uid string) (pids, shims []int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil || !strings.Contains(string(b), "pod"+uid) {
			continue
		}
		pids = append(pids, pid)
		st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		for _, l := range strings.Split(string(st), "\n") {
			v, ok := strings.CutPrefix(l, "PPid:")
			if !ok {
				continue
			}
			ppid, _ := strconv.Atoi(strings.TrimSpace(v))
			cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(ppid), "cmdline"))
			if strings.Contains(string(cmd), "containerd-shim-runc-v2") && !slices.Contains(shims, ppid) {
				shims = append(shims, ppid)
			}
		}
	}
	return pids, shims
}

// deletePodContainers deletes the pod's containers, their tasks and
// snapshots from the node's containerd, as the agent's RemoveContainer does.
func deletePodContainers(state, uid string) error {
	layout := cdlayout.Layout{Dir: filepath.Join(state, "containerd")}
	client, err := containerd.New(layout.Address(), containerd.WithDefaultNamespace(cdlayout.Namespace))
	if err != nil {
		return fmt.Errorf("connect to the node's containerd: %w", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), cdlayout.Namespace), 30*time.Second)
	defer cancel()
	cs, err := client.Containers(ctx, fmt.Sprintf("labels.%q==%s", ctrdruntime.LabelPodUID, uid))
	if err != nil {
		return fmt.Errorf("list the pod's containers: %w", err)
	}
	if len(cs) == 0 {
		return errors.New("the pod has no containers in containerd")
	}
	for _, c := range cs {
		if task, err := c.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("delete task %s: %w", c.ID(), err)
			}
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("task of %s: %w", c.ID(), err)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete container %s: %w", c.ID(), err)
		}
	}
	return nil
}

// waitAgentBack waits for a podagent other than old to answer /healthz.
func (n *node) waitAgentBack(t *testing.T, old int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if now := procsOf("podagent", "--state "+n.state+" "); len(now) == 1 && now[0] != old {
			if resp, err := n.http.Get(n.url + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("podagent not back within a minute\n%s", tail(n.stderr.String(), 40))
}
