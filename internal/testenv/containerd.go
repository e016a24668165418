package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/sys/unix"

	cdlayout "github.com/podboot/podboot/init/containerd"
	"github.com/podboot/podboot/internal/nsutil"
)

// Binaries the harness needs in <repo>/bin.
var binaries = []string{"containerd", "containerd-shim-runc-v2", "runc"}

// Env is a running private containerd.
type Env struct {
	Layout cdlayout.Layout
	// BinDir holds containerd, containerd-shim-runc-v2 and runc.
	BinDir   string
	RuncPath string
	// RuncRoot is runc's state root for this daemon's containers.
	RuncRoot string
	// StateDir is an empty directory for the code under test (an agent's
	// state: netns/, fifo/, ...); mounts left under it are undone at cleanup.
	StateDir string
}

// Address is the daemon's gRPC socket.
func (e *Env) Address() string { return e.Layout.Address() }

// Client connects to the daemon in containerd's podboot namespace; the
// client is closed at cleanup.
func (e *Env) Client(t testing.TB) *containerd.Client {
	t.Helper()
	c, err := containerd.New(e.Address(), containerd.WithDefaultNamespace(cdlayout.Namespace))
	if err != nil {
		t.Fatalf("connect to containerd at %s: %v", e.Address(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Containerd starts a private containerd for the test and stops it at
// cleanup, leaving no task, shim, mount or file behind. It needs root and
// <repo>/bin/{containerd,containerd-shim-runc-v2,runc}.
func Containerd(t testing.TB) *Env {
	t.Helper()
	RequireRoot(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(root, "bin")
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			Unavailable(t, "needs %s: run as root after make build", filepath.Join(binDir, b))
		}
	}
	// Not t.TempDir(): unix socket paths are limited to 108 bytes and test
	// names can be long.
	dir, err := os.MkdirTemp("", "pbctd")
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{
		Layout:   cdlayout.Layout{Dir: dir},
		BinDir:   binDir,
		RuncPath: filepath.Join(binDir, "runc"),
		StateDir: filepath.Join(dir, "agent"),
	}
	env.RuncRoot = env.Layout.RuncRoot()
	if err := os.MkdirAll(env.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := env.Layout.Prepare(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := env.Layout.Command(binDir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that a ^C to go test reaches the test
	// binary, which then stops the daemon in order.
	// Pdeathsig stops the daemon if the test binary dies. It fires when
	// the *thread* that started the daemon exits, and Go ends a thread
	// whose goroutine exits while locked to it (as namespace code does), so
	// the daemon is started from a thread kept until it exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	release, err := nsutil.StartOnKeptThread(cmd)
	if err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		t.Fatalf("start containerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		release()
		exited <- err
		logFile.Close()
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the test failed; %s", tail(logPath))
		}
		if err := env.teardown(cmd, exited); err != nil {
			t.Errorf("stop containerd in %s: %v\n%s", dir, err, tail(logPath))
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove containerd directory: %v", err)
		}
	})
	if err := waitSocket(env.Address(), exited, 15*time.Second); err != nil {
		t.Fatalf("containerd did not come up: %v\n%s", err, tail(logPath))
	}
	return env
}

func waitSocket(addr string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("unix", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("containerd exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no socket at %s after %v: %w", addr, timeout, err)
		}
	}
}

// teardown kills and deletes every task and container, stops the daemon,
// kills shims left behind and unmounts whatever is still mounted under the
// directory.
func (e *Env) teardown(cmd *exec.Cmd, exited <-chan error) error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.deleteAll(ctx); err != nil {
		errs = append(errs, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	if err := killShims(e.Layout.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := UnmountUnder(e.Layout.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (e *Env) deleteAll(ctx context.Context) error {
	c, err := containerd.New(e.Address())
	if err != nil {
		return fmt.Errorf("connect for cleanup: %w", err)
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		nsctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nsctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers in %s: %w", ns, err))
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nsctx, nil); err == nil {
				_, _ = task.Delete(nsctx, containerd.WithProcessKill)
			}
			if err := ctr.Delete(nsctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("delete container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// killShims kills the shims of the daemon at dir: they outlive the daemon by
// design, and are found by the daemon address on their command line.
func killShims(dir string) error {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) || !bytes.Contains(cmdline, []byte(dir+"/")) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

// Mounts returns the mount points at or under dir, deepest first.
func Mounts(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	return mounts, nil
}

// UnmountUnder detaches every mount at or under dir.
func UnmountUnder(dir string) error {
	mounts, err := Mounts(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tail is the end of the daemon's log, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "containerd log:\n" + string(b)
}
