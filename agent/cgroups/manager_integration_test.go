package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/internal/testenv"
)

// testManager makes a Manager under a unique root and removes every
// cgroup under the test's top directory, in every hierarchy, at cleanup.
func testManager(t *testing.T, allocatable corev1.ResourceList, pidsLimit int64) *Manager {
	t.Helper()
	testenv.RequireRoot(t)
	if cgroups.Mode() == cgroups.Unavailable {
		testenv.Unavailable(t, "needs a mounted cgroup filesystem")
	}
	b := make([]byte, 6)
	rand.Read(b)
	top := "/podboot-test-" + hex.EncodeToString(b)
	mounts, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m := &Manager{mounts: mounts}
		if err := m.remove(top); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	m, err := New(Config{Root: top + "/kubepods", Allocatable: allocatable, PodPidsLimit: pidsLimit, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// controllerDir is the directory of group in the v1 hierarchy of controller.
func controllerDir(t *testing.T, m *Manager, controller, group string) string {
	t.Helper()
	for _, mt := range m.mounts {
		if !mt.unified && slices.Contains(mt.controllers, controller) {
			return filepath.Join(mt.point, group)
		}
	}
	t.Fatalf("no cgroup v1 hierarchy with %s", controller)
	return ""
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestIntegrationHierarchyV1(t *testing.T) {
	if cgroups.Mode() == cgroups.Unified {
		testenv.Unavailable(t, "needs cgroup v1 or hybrid; the unified path runs in the QEMU end-to-end test")
	}
	m := testManager(t, list("1500m", "512Mi"), 256)
	if m.Unified() {
		t.Fatal("Unified() on a v1 host")
	}
	root := m.cfg.Root

	paths := map[string]string{}
	for _, p := range []*corev1.Pod{guaranteed, burstable, besteffort} {
		got, err := m.EnsurePod(p)
		if err != nil {
			t.Fatal(err)
		}
		paths[string(p.UID)] = got
	}
	// EnsurePod again updates in place.
	if _, err := m.EnsurePod(guaranteed); err != nil {
		t.Fatalf("EnsurePod of an existing cgroup: %v", err)
	}
	if err := m.UpdateQOS([]*corev1.Pod{guaranteed, burstable, besteffort, pod("b2", container(list("750m", ""), nil))}); err != nil {
		t.Fatal(err)
	}
	g, b, e := paths["g1"], paths["b1"], paths["e1"]
	for _, tc := range []struct {
		controller, group, file, want string
	}{
		{"cpu", root, "cpu.shares", "1536"},
		{"memory", root, "memory.limit_in_bytes", strconv.Itoa(512 << 20)},
		{"cpu", root + "/besteffort", "cpu.shares", "2"},
		{"cpu", root + "/burstable", "cpu.shares", "1024"}, // 250m + 750m
		{"cpu", g, "cpu.shares", "512"},
		{"cpu", g, "cpu.cfs_quota_us", "50000"},
		{"cpu", g, "cpu.cfs_period_us", "100000"},
		{"memory", g, "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"pids", g, "pids.max", "256"},
		{"cpu", b, "cpu.shares", "256"},
		{"cpu", b, "cpu.cfs_quota_us", "-1"},
		{"memory", b, "memory.limit_in_bytes", strconv.Itoa(128 << 20)},
		{"pids", b, "pids.max", "256"},
		{"cpu", e, "cpu.shares", "2"},
		{"cpu", e, "cpu.cfs_quota_us", "-1"},
		{"pids", e, "pids.max", "256"},
	} {
		p := filepath.Join(controllerDir(t, m, tc.controller, tc.group), tc.file)
		if got := readFile(t, p); got != tc.want {
			t.Errorf("%s = %q, want %q", p, got, tc.want)
		}
	}
	// No memory limit: the kernel's unlimited value, a page-rounded maximum.
	if got := readFile(t, filepath.Join(controllerDir(t, m, "memory", e), "memory.limit_in_bytes")); len(got) < 15 {
		t.Errorf("besteffort memory.limit_in_bytes = %s, want unlimited", got)
	}
	if got, want := g, root+"/podg1"; got != want {
		t.Errorf("guaranteed path %q, want %q", got, want)
	}

	uids, err := m.PodUIDs()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]types.UID{"b1", "e1", "g1"}, uids); diff != "" {
		t.Errorf("PodUIDs (-want +got):\n%s", diff)
	}

	// A process in a container cgroup left by runc, in every hierarchy,
	// the unified one included as runc does on a hybrid host.
	container := path.Join(b, "ctr1")
	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleep.Wait() }()
	t.Cleanup(func() { sleep.Process.Kill() })
	var dirs []string
	for _, mt := range m.mounts {
		dir := filepath.Join(mt.point, container)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		// Elsewhere (cpuset needs cpus and mems first) an empty child.
		if !mt.unified && !slices.ContainsFunc(mt.controllers, func(c string) bool { return c == "cpu" || c == "memory" || c == "pids" }) {
			continue
		}
		procs := filepath.Join(dir, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(sleep.Process.Pid)), 0); err != nil {
			t.Fatalf("move sleep into %s: %v", procs, err)
		}
	}
	if err := m.RemovePod("b1"); err != nil {
		t.Fatalf("RemovePod: %v", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("sleep still runs after RemovePod")
	}
	for _, dir := range append(dirs, controllerDir(t, m, "cpu", b), controllerDir(t, m, "memory", b)) {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after RemovePod: %v, want gone", dir, err)
		}
	}
	if err := m.RemovePod("b1"); err != nil {
		t.Errorf("RemovePod of a missing cgroup: %v", err)
	}
	if err := m.RemovePod("../x"); err == nil {
		t.Error("RemovePod(../x) succeeded")
	}

	if err := m.Destroy(); err == nil {
		t.Error("Destroy succeeded with pod cgroups left")
	}
	for _, uid := range []types.UID{"g1", "e1"} {
		if err := m.RemovePod(uid); err != nil {
			t.Fatal(err)
		}
	}
	if uids, err := m.PodUIDs(); err != nil || len(uids) != 0 {
		t.Errorf("PodUIDs after removing every pod = %v, %v", uids, err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, mt := range m.mounts {
		if _, err := os.Stat(filepath.Join(mt.point, root)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after Destroy: %v, want gone", filepath.Join(mt.point, root), err)
		}
	}
}

func TestIntegrationBadInput(t *testing.T) {
	m := testManager(t, nil, 0)
	if _, err := m.EnsurePod(nil); err == nil {
		t.Error("EnsurePod(nil) succeeded")
	}
	if _, err := m.EnsurePod(pod("", container(nil, nil))); err == nil {
		t.Error("EnsurePod of a pod without uid succeeded")
	}
	if _, err := m.EnsurePod(pod("a/../../b", container(nil, nil))); err == nil {
		t.Error("EnsurePod of a pod with a path in its uid succeeded")
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
}
