package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's container cgroups are removed when no live task owns them and
// they are empty: what runc leaves when a container is never deleted (its
// shim and containerd were killed). One with a process, or whose task
// lives, is left alone: nothing is killed.
func TestIntegrationRemoveStrayContainers(t *testing.T) {
	m := testManager(t, nil, 0)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "0b5a6c1e-stray", Namespace: "default", Name: "stray"}}
	group, err := m.EnsurePod(pod)
	if err != nil {
		t.Fatal(err)
	}
	const (
		dead    = "dead0000000000000000000000000000000000000000000000000000000000aa"
		live    = "live0000000000000000000000000000000000000000000000000000000000bb"
		escaped = "escd0000000000000000000000000000000000000000000000000000000000cc"
	)
	var dirs = map[string][]string{}
	for _, mt := range m.mounts {
		for _, id := range []string{dead, live, escaped} {
			d := filepath.Join(mt.point, group, id)
			if err := os.MkdirAll(d, 0o755); err != nil { // runc makes the pod's in the unified hierarchy of a hybrid host
				t.Fatal(err)
			}
			dirs[id] = append(dirs[id], d)
		}
	}
	// A process of a container whose shim died: it still runs in its cgroup.
	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	for _, d := range dirs[escaped] {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} { // v1 cpuset takes no process before these
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(d), f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), b, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0); err != nil {
			t.Fatalf("move the process into %s: %v", d, err)
		}
	}

	removed, err := m.RemoveStrayContainers(pod.UID, func(id string) bool { return id == live })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dead}, removed); diff != "" {
		t.Errorf("removed container cgroups (-want +got):\n%s", diff)
	}
	for id, want := range map[string]bool{dead: false, live: true, escaped: true} {
		for _, d := range dirs[id] {
			if _, err := os.Stat(d); (err == nil) != want {
				t.Errorf("%s: exists = %v, want %v", d, err == nil, want)
			}
		}
	}
	if err := syscall.Kill(sleep.Process.Pid, 0); err != nil {
		t.Errorf("the process of the escaped container: %v, want it left running", err)
	}
}
