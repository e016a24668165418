package soak

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/podboot/podboot/bench/podbench"
	"github.com/podboot/podboot/internal/integration"
	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationSoak is the soak in five minutes: the 20 pods on
// a real node, sampled every 15 s, judged after a 2-minute warm-up. It
// asserts only that no series grows without bound (Analyze: the level
// and the trend both beyond a generous tolerance) and that the node left
// nothing behind; never how long anything took.
func TestIntegrationSoak(t *testing.T) {
	c := soakConfig(t)
	c.Duration, c.Interval, c.EditEvery, c.WarmUp = 5*time.Minute, 15*time.Second, time.Minute, 2*time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rep, err := Run(ctx, c)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Work, "devnode.log"))
		t.Fatalf("Run: %v\ndevnode.log (last 8 kB):\n%s", err, tail(log, 8<<10))
	}
	var b strings.Builder
	if err := WriteMarkdown(&b, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", b.String())
	if rep.Edits < 4*3 {
		t.Errorf("%d manifest edits, want at least 12 (4 pods, 3 minutes): the churn did not run", rep.Edits)
	}
	if len(rep.Verdicts) == 0 {
		t.Fatal("no series judged")
	}
	for _, v := range rep.Growing() {
		t.Errorf("%s", v.Why)
	}
	last := rep.Samples[len(rep.Samples)-1].Values
	for _, name := range []string{Veths, Cgroups, Mounts, Shims, Restarts} {
		if last[name] <= 0 {
			t.Errorf("the last sample has %s = %v: the series measures nothing", name, last[name])
		}
	}
	checkNothingLeft(t, c.Work, rep.CgroupRoot)
}

// soakConfig checks what the soak needs and returns a configuration
// with a scratch directory and a free address.
func soakConfig(t *testing.T) Config {
	t.Helper()
	integration.RequireRoot(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin")
	for _, b := range []string{"devnode", "mkimage", "podagent", "containerd", "containerd-shim-runc-v2", "runc", "cni/bridge", "cni/host-local"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			integration.Unavailable(t, "needs bin/%s: run make build", b)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		integration.Unavailable(t, "needs /bin/busybox: apt-get install busybox-static")
	}
	return Config{
		Devnode: filepath.Join(bin, "devnode"), Mkimage: filepath.Join(bin, "mkimage"), Runc: filepath.Join(bin, "runc"),
		CNIBinDir: filepath.Join(bin, "cni"), Busybox: "/bin/busybox", Arch: runtime.GOARCH,
		Work: t.TempDir(),
		// The node listens in a network namespace of its own: any port
		// is free there.
		Listen: "127.0.0.1:8080", Mix: DefaultMix(),
		StartTimeout: 5 * time.Minute, PowerOffTimeout: 6 * time.Minute,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// checkNothingLeft fails t if a process, mount, cgroup or the network
// namespace (and so a veth) of the node in work is still there.
func checkNothingLeft(t *testing.T, work, cgroupRoot string) {
	t.Helper()
	work, err := filepath.EvalSymlinks(work)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	node := podbench.Node{Proc: proc, StateDir: filepath.Join(work, "state")}
	if procs, err := node.Processes(); err != nil || len(procs) > 0 {
		t.Errorf("after the soak the node's processes are %v (%v), want none", procs, err)
	}
	mounts, err := proc.GetMounts()
	if err != nil {
		t.Fatal(err)
	}
	if left := podbench.MountsUnder(mounts, work); len(left) > 0 {
		t.Errorf("after the soak these remain mounted: %v", left)
	}
	// The pin is the namespace's last reference once the node is gone:
	// with it, the bridge and every veth in the namespace go.
	if _, err := os.Stat(filepath.Join(work, "netns")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the node's network namespace pin is still there (%v)", err)
	}
	if cgroupRoot == "" {
		t.Error("the soak did not record the agent's cgroup root")
		return
	}
	for _, m := range mounts {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		if _, err := os.Stat(filepath.Join(m.MountPoint, cgroupRoot)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s is still there after the soak (%v)", filepath.Join(m.MountPoint, cgroupRoot), err)
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
