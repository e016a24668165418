package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/sys/mountinfo"

	"github.com/podboot/podboot/internal/integration"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestParentPID(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want int
		ok   bool
	}{
		{"42 (sh) S 7 42 42 0", 7, true},
		{"42 (a) b (c) R 9 1 1", 9, true},
		{"42 (sh)", 0, false},
		{"garbage", 0, false},
		{"42 (sh) S x", 0, false},
	} {
		got, ok := parentPID([]byte(tc.stat))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parentPID(%q) = %d, %v; want %d, %v", tc.stat, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIsShimFor(t *testing.T) {
	const addr = "/s/containerd/containerd.sock"
	for _, tc := range []struct {
		cmdline []string
		want    bool
	}{
		{[]string{"/bin/containerd-shim-runc-v2", "-namespace", "podboot", "-id", "x", "-address", addr}, true},
		{[]string{"containerd-shim-runc-v2", "--address", addr, "-publish-binary", "containerd"}, true},
		{[]string{"/bin/containerd-shim-runc-v2", "-address", "/run/containerd/containerd.sock"}, false},
		{[]string{"/bin/containerd-shim-runc-v2", "-address"}, false},
		{[]string{"/bin/other", "-address", addr}, false},
		{nil, false},
	} {
		if got := isShimFor(tc.cmdline, addr); got != tc.want {
			t.Errorf("isShimFor(%q) = %v, want %v", tc.cmdline, got, tc.want)
		}
	}
}

func TestLeftovers(t *testing.T) {
	procs, err := listProcs("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range leftovers(procs, "/state/containerd/containerd.sock") {
		got = append(got, p.pid)
	}
	// The container's process first, then its shim; another containerd's
	// shim and container stay.
	if diff := cmp.Diff([]int{201, 200}, got); diff != "" {
		t.Errorf("leftover pids (-want +got):\n%s", diff)
	}
}

func TestListProcsErrors(t *testing.T) {
	if _, err := listProcs(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("listProcs of a missing dir: %v", err)
	}
}

func TestRemoveEmptyTree(t *testing.T) {
	// On a plain directory tree rmdir behaves as on cgroups: only empty
	// directories go.
	dir := filepath.Join(t.TempDir(), "podboot")
	for _, d := range []string{"a/x", "b", "c/held", "pod1/d", "other/x"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "c/held/tasks"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{"a": true, "b": true, "c": true, "d": true}
	n, busy, err := removeEmptyTree(dir, ids)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("removed %d directories, want 4 (a/x, a, b, pod1/d)", n)
	}
	want := []string{filepath.Join(dir, "c/held"), filepath.Join(dir, "c")}
	if diff := cmp.Diff(want, busy); diff != "" {
		t.Errorf("in use (-want +got):\n%s", diff)
	}
	for _, keep := range []string{"pod1", "other/x"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s of no container of this node was removed: %v", keep, err)
		}
	}
	if n, busy, err := removeEmptyTree(filepath.Join(t.TempDir(), "missing"), ids); n != 0 || busy != nil || err != nil {
		t.Errorf("removeEmptyTree of a missing dir = %d, %v, %v", n, busy, err)
	}
}

func TestRemoveEmptyCgroups(t *testing.T) {
	integration.RequireRoot(t)
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil || len(mounts) == 0 {
		integration.Unavailable(t, "no cgroup hierarchy mounted (%v)", err)
	}
	parent := fmt.Sprintf("podboot-devnode-test-%d", os.Getpid())
	var made []string
	for _, m := range mounts {
		d := filepath.Join(m.Mountpoint, parent, "ctr1")
		if err := os.MkdirAll(d, 0o755); err != nil {
			continue // a read-only or odd hierarchy
		}
		made = append(made, d)
	}
	if len(made) == 0 {
		integration.Unavailable(t, "cannot create cgroups here")
	}
	if err := removeEmptyCgroups([]string{parent}, map[string]bool{"ctr1": true}, discardLog()); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left: %v", d, err)
			os.Remove(d)
		}
		os.Remove(filepath.Dir(d))
	}
}
