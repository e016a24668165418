package podbench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/podboot/podboot/internal/testenv"
)

// TestIntegrationRun runs a miniature benchmark on the real node (bin/devnode
// and what it starts) and checks that every figure was taken and that the
// node left nothing behind. It asserts no timing: the figures are the
// benchmark's business, not the test's.
func TestIntegrationRun(t *testing.T) {
	bin, listen := benchNode(t)

	work := t.TempDir()
	cfg := Config{
		Devnode: filepath.Join(bin, "devnode"), Mkimage: filepath.Join(bin, "mkimage"), Runc: filepath.Join(bin, "runc"),
		Busybox: "/bin/busybox", Arch: runtime.GOARCH,
		Work: work, Listen: listen,
		Sequential: 2, Burst: 2, MemoryAt: []int{0, 2},
		CPUWindow: time.Second, Settle: 100 * time.Millisecond,
		PodTimeout: time.Minute, PowerOffTimeout: 3 * time.Minute,
		Podboot: true,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "devnode.log"))
		t.Fatalf("Run: %v\ndevnode.log:\n%s", err, log)
	}

	if res.PodbootSeq.N != 2 || res.PodbootBurst.N != 2 {
		t.Errorf("latency samples: %d one at a time, %d at once; want 2 and 2", res.PodbootSeq.N, res.PodbootBurst.N)
	}
	for _, n := range []int{0, 2} {
		m, ok := res.Memory[n]
		if !ok || m.Agent == 0 || m.Containerd == 0 || m.ShimCount != n {
			t.Errorf("memory with %d pods = %+v (taken: %v), want the agent, containerd and %d shims", n, m, ok, n)
		}
	}
	if res.AgentCPU < 0 {
		t.Error("agent CPU not measured")
	}

	proc, err := procfs.NewDefaultFS()
	if err != nil {
		t.Fatal(err)
	}
	node := Node{Proc: proc, StateDir: filepath.Join(work, "state")}
	if procs, err := node.Processes(); err != nil || len(procs) > 0 {
		t.Errorf("after Run the node's processes are %v (%v), want none", procs, err)
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		t.Fatal(err)
	}
	if left := MountsUnder(mounts, work); len(left) > 0 {
		t.Errorf("after Run these remain mounted: %v", left)
	}
}

// benchNode checks what a benchmark on a real node needs (root, make
// build's binaries, busybox-static) and returns bin/ and a free loopback
// address for the node's API.
func benchNode(t *testing.T) (bin, listen string) {
	testenv.RequireRoot(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(root, "bin")
	for _, b := range []string{"devnode", "mkimage", "podagent", "containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			testenv.Unavailable(t, "needs bin/%s: run make build", b)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Unavailable(t, "needs /bin/busybox: apt-get install busybox-static")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen = l.Addr().String()
	l.Close()
	return bin, listen
}
