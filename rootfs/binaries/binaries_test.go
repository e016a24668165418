package binaries

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/podboot/podboot/internal/testenv"
)

func TestCommands(t *testing.T) {
	pkgs, err := Commands("busybox/commands.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gosh", "ls", "cat", "ps", "mount", "dmesg", "ip", "mkdir", "echo", "grep"} {
		if !slices.Contains(pkgs, "github.com/u-root/u-root/cmds/core/"+want) {
			t.Errorf("command %s missing", want)
		}
	}
	bad := filepath.Join(t.TempDir(), "c.go")
	os.WriteFile(bad, []byte("package x\n"), 0o644)
	if _, err := Commands(bad); err == nil {
		t.Error("Commands(no imports) succeeded")
	}
}

// checkStaticARM64 fails unless path is a static (no interpreter) arm64 ELF.
func checkStaticARM64(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("%s: machine %v, want EM_AARCH64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: has an interpreter: not static", path)
		}
	}
}

// TestIntegrationBuild builds every binary into the repository's shared
// cache (.cache/arm64), as the firmware builder does.
func TestIntegrationBuild(t *testing.T) {
	if testing.Short() {
		testenv.Unavailable(t, "builds containerd and runc: minutes on a cold cache; not run with -short")
	}
	for _, tool := range []string{"go", "aarch64-linux-gnu-gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "needs %s: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross libseccomp-dev:arm64", tool)
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := LockCache(filepath.Join(root, ".cache"), t.Output())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	b := &Builder{RepoRoot: root, CacheDir: filepath.Join(root, ".cache", "arm64"), Arch: "arm64", Printf: t.Logf}
	ctx := context.Background()
	podctl, err := b.Repo(ctx, "podctl", "./tools/podctl")
	if err != nil {
		t.Fatal(err)
	}
	containerd, shim, err := b.Containerd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runc, err := b.Runc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cni, err := b.CNIPlugins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plugins := checkCNIPlugins(t, cni)
	bb, names, err := b.Busybox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "gosh") {
		t.Errorf("busybox commands %v lack gosh", names)
	}
	for _, p := range append([]string{podctl, containerd, shim, runc, bb}, plugins...) {
		checkStaticARM64(t, p)
	}
}

// checkCNIPlugins fails unless dir holds the four plugins and nothing
// else, and returns their paths.
func checkCNIPlugins(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got, paths []string
	for _, e := range entries {
		got = append(got, e.Name())
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	if want := []string{"bridge", "host-local"}; !slices.Equal(got, want) {
		t.Errorf("CNI plugin directory %s holds %v, want %v", dir, got, want)
	}
	return paths
}

// TestIntegrationCNIPluginsHostArch builds the plugins for the host's own
// architecture, where go install writes GOPATH/bin rather than
// bin/linux_<arch>, into a fresh cache (Go's build cache keeps it quick).
func TestIntegrationCNIPluginsHostArch(t *testing.T) {
	if testing.Short() {
		testenv.Unavailable(t, "builds the CNI plugins; not run with -short")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b := &Builder{RepoRoot: root, CacheDir: t.TempDir(), Arch: runtime.GOARCH, Printf: t.Logf}
	dir, err := b.CNIPlugins(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checkCNIPlugins(t, dir)
	again, err := b.CNIPlugins(t.Context())
	if err != nil || again != dir {
		t.Errorf("second CNIPlugins = %q, %v; want the cache hit %q", again, err, dir)
	}
}
