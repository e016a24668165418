package supervise

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
)

// startZombie starts a child that exits at once and waits until it is a
// zombie, without waiting for it.
func startZombie(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		if _, rest, _ := strings.Cut(string(b), ") "); strings.HasPrefix(rest, "Z") {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d never exited", cmd.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReapZombies(t *testing.T) {
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	owned := startZombie(t)
	orphan := startZombie(t)
	isOwned := func(pid int) bool { return pid == owned.Process.Pid }
	reaped, err := reapZombies(fs, os.Getpid(), isOwned)
	if err != nil {
		t.Fatal(err)
	}
	want := []reapedProcess{{pid: orphan.Process.Pid, comm: "true", status: "exit status 0"}}
	if diff := cmp.Diff(want, reaped, cmp.AllowUnexported(reapedProcess{})); diff != "" {
		t.Errorf("reaped (-want +got):\n%s", diff)
	}
	// The owner can still wait for its child.
	if err := owned.Wait(); err != nil {
		t.Errorf("Wait for the owned child: %v", err)
	}
}

func TestReapOrphansOnSIGCHLD(t *testing.T) {
	logs, log := newRecorded()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ReapOrphans(ctx, func(int) bool { return false }, log) }()
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, "reaped orphan", map[string]string{"pid": strconv.Itoa(cmd.Process.Pid), "status": "exit status 0"})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ReapOrphans: %v", err)
	}
}
