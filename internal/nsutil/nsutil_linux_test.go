package nsutil_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/podboot/podboot/internal/nsutil"
	"github.com/podboot/podboot/internal/testenv"
)

func TestIntegrationPinDoUnpin(t *testing.T) {
	testenv.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := nsutil.PinNewNetNS(path); err != nil {
		t.Fatal(err)
	}
	own, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := nsutil.Do(path, func() error {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == own {
		t.Errorf("Do ran in the caller's namespace %s", own)
	}
	if again, _ := os.Readlink("/proc/thread-self/ns/net"); again != own {
		t.Errorf("the caller's namespace changed from %s to %s", own, again)
	}
	if err := nsutil.Unpin(path); err != nil {
		t.Fatal(err)
	}
	if err := nsutil.Do(path, func() error { return nil }); err == nil {
		t.Error("Do into an unpinned namespace succeeded")
	}
}

// TestIntegrationStartOnKeptThread: a child with Pdeathsig started this
// way outlives threads that Do throws away.
func TestIntegrationStartOnKeptThread(t *testing.T) {
	testenv.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := nsutil.PinNewNetNS(path); err != nil {
		t.Fatal(err)
	}
	defer nsutil.Unpin(path)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	release, err := nsutil.StartOnKeptThread(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); release() }()
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nsutil.Do(path, func() error { return nil })
		}()
	}
	wg.Wait()
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the child died with a discarded thread: %v", err)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); err != nil || strings.Contains(string(st), ") Z ") {
		t.Fatalf("the child is gone or a zombie: %q %v", st, err)
	}
}
