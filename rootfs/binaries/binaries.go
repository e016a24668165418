// Package binaries builds the firmware's programs for the board's
// architecture, reproducibly (-trimpath, no build ID, no VCS stamp, stripped)
// and cached under the cache directory:
//
//   - podboot's own: init, podagent, podctl (go build in the repository;
//     Go's build cache makes a rebuild cheap, so they are always rebuilt);
//   - pinned upstream: containerd and its runc shim (pure Go) and runc
//     (cgo, static-pie, with seccomp), built with go install pkg@version so
//     their own go.mod decides every dependency, as their releases do;
//   - the standard CNI plugins (pure Go), in a directory of their own;
//   - the debug shell: u-root's gosh and core commands in one gobusybox
//     binary, pinned by the nested module in busybox/.
package binaries

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Pinned upstream versions.
const (
	ContainerdModule  = "github.com/containerd/containerd/v2"
	ContainerdVersion = "v2.4.2"
	RuncModule        = "github.com/opencontainers/runc"
	RuncVersion       = "v1.5.2"
	CNIPluginsModule  = "github.com/containernetworking/plugins"
	CNIPluginsVersion = "v1.9.1"
)

// CNIPluginPackages are the standard plugins the pod network uses, by
// package under CNIPluginsModule/plugins; each binary is named after the
// last element. Not loopback (netsetup/podnet brings lo up over netlink)
// nor portmap (its nftables backend execs the nft binary, which a board
// lacks; netsetup/hostport writes the rules over netlink): 5 MiB less
// initramfs.
var CNIPluginPackages = []string{"main/bridge", "ipam/host-local"}

// ContainerdTags leave out of the board's containerd what a pod agent never
// uses: the CRI server (podboot is its own kubelet; its plugins are
// disabled in the config anyway), tracing, and the btrfs, devmapper and
// zfs snapshotters (the board uses overlayfs on tmpfs). Measured: a smaller
// binary to unpack from the initramfs and less to initialise at each start.
const ContainerdTags = "no_cri,no_tracing,no_btrfs,no_devmapper,no_zfs"

// Builder builds binaries for one architecture.
type Builder struct {
	// RepoRoot is podboot's module root.
	RepoRoot string
	// CacheDir is the architecture's cache, e.g. .cache/arm64.
	CacheDir string
	// Arch is GOARCH (arm64).
	Arch string
	// Printf reports progress.
	Printf func(format string, args ...any)
}

func (b *Builder) printf(format string, args ...any) {
	if b.Printf != nil {
		b.Printf(format, args...)
	}
}

// env is the cross build environment.
func (b *Builder) env(cgo bool) []string {
	env := append(os.Environ(), "GOOS=linux", "GOARCH="+b.Arch, "GOFLAGS=", "GOTOOLCHAIN=local")
	if cgo {
		return append(env, "CGO_ENABLED=1")
	}
	return append(env, "CGO_ENABLED=0")
}

func (b *Builder) run(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := strings.TrimSpace(string(out))
		if len(s) > 2000 {
			s = "..." + s[len(s)-2000:]
		}
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, s)
	}
	return nil
}

// Repo builds a package of podboot's module (./agent/cmd/podagent) to
// CacheDir/podboot/name.
func (b *Builder) Repo(ctx context.Context, name, pkg string) (string, error) {
	out := filepath.Join(b.CacheDir, "podboot", name)
	start := time.Now()
	err := b.run(ctx, b.RepoRoot, b.env(false), "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, pkg)
	if err != nil {
		return "", fmt.Errorf("build %s (%s): %w", name, pkg, err)
	}
	b.printf("built %s from %s (%s, %.1fs)", name, pkg, size(out), time.Since(start).Seconds())
	return out, nil
}

// installed builds module commands with go install pkg@version into a
// GOPATH under the cache (go install refuses GOBIN when cross compiling;
// with GOPATH it writes bin/linux_<arch>/, or bin/ for the host's own
// architecture). A marker file makes the result a cache entry.
func (b *Builder) installed(ctx context.Context, name string, cgo bool, flags, extraEnv []string, pkgs ...string) (string, error) {
	gopath := filepath.Join(b.CacheDir, name)
	bin := filepath.Join(gopath, "bin", "linux_"+b.Arch)
	if runtime.GOOS == "linux" && runtime.GOARCH == b.Arch {
		bin = filepath.Join(gopath, "bin")
	}
	marker := filepath.Join(gopath, ".done")
	if _, err := os.Stat(marker); err == nil {
		b.printf("cache hit: %s (%s)", name, bin)
		return bin, nil
	}
	start := time.Now()
	b.printf("building %s for linux/%s (first build: a minute or two)", name, b.Arch)
	gomodcache, err := goEnv(ctx, "GOMODCACHE")
	if err != nil {
		return "", err
	}
	env := append(b.env(cgo), "GOPATH="+gopath, "GOMODCACHE="+gomodcache, "GOBIN=")
	env = append(env, extraEnv...)
	args := append([]string{"go", "install", "-trimpath", "-buildvcs=false"}, flags...)
	if err := b.run(ctx, b.RepoRoot, env, append(args, pkgs...)...); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		return "", err
	}
	b.printf("built %s (%.0fs)", name, time.Since(start).Seconds())
	return bin, nil
}

// Containerd builds containerd and containerd-shim-runc-v2 and returns
// their paths.
func (b *Builder) Containerd(ctx context.Context) (containerd, shim string, err error) {
	v := ContainerdVersion
	bin, err := b.installed(ctx, "containerd-"+v+"-"+strings.ReplaceAll(ContainerdTags, ",", "-"), false,
		[]string{"-tags=" + ContainerdTags, "-ldflags=-s -w -buildid= -X " + ContainerdModule + "/version.Version=" + v}, nil,
		ContainerdModule+"/cmd/containerd@"+v, ContainerdModule+"/cmd/containerd-shim-runc-v2@"+v)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(bin, "containerd"), filepath.Join(bin, "containerd-shim-runc-v2"), nil
}

// CNIPlugins builds the CNI plugins and returns the directory holding
// them (bridge, host-local, loopback, portmap) and nothing else.
func (b *Builder) CNIPlugins(ctx context.Context) (dir string, err error) {
	v := CNIPluginsVersion
	var pkgs []string
	for _, p := range CNIPluginPackages {
		pkgs = append(pkgs, CNIPluginsModule+"/plugins/"+p+"@"+v)
	}
	return b.installed(ctx, "cni-plugins-"+v, false, []string{"-ldflags=-s -w -buildid="}, nil, pkgs...)
}

// CrossCC is the C cross compiler for arch.
func CrossCC(arch string) string {
	if arch == "arm64" {
		return "aarch64-linux-gnu-gcc"
	}
	return "gcc"
}

// Runc builds a static-pie runc with seccomp (libseccomp-dev for the
// target architecture, linked statically).
func (b *Builder) Runc(ctx context.Context) (string, error) {
	v := RuncVersion
	name := "runc-" + v
	gopath := filepath.Join(b.CacheDir, name)
	if _, err := os.Stat(filepath.Join(gopath, ".done")); err != nil {
		// Only the cgo build needs these; say so before go does, obscurely.
		if _, err := exec.LookPath(CrossCC(b.Arch)); err != nil {
			return "", fmt.Errorf("build runc: %s not found: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross", CrossCC(b.Arch))
		}
	}
	multiarch := map[string]string{"arm64": "aarch64-linux-gnu", "amd64": "x86_64-linux-gnu"}[b.Arch]
	flags := []string{
		"-buildmode=pie", "-tags=seccomp netgo osusergo",
		"-ldflags=-s -w -buildid= -X main.version=" + strings.TrimPrefix(v, "v") + " -linkmode external -extldflags -static-pie",
	}
	env := []string{
		"CC=" + CrossCC(b.Arch),
		"PKG_CONFIG_PATH=/usr/lib/" + multiarch + "/pkgconfig",
		"PKG_CONFIG_LIBDIR=/usr/lib/" + multiarch + "/pkgconfig",
	}
	bin, err := b.installed(ctx, name, true, flags, env, RuncModule+"@"+v)
	if err != nil {
		return "", err
	}
	return filepath.Join(bin, "runc"), nil
}

func goEnv(ctx context.Context, key string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// busyboxTags are the busybox's Go build tags.
const busyboxTags = "goshsmall"

// Busybox builds u-root's gosh and core commands (the nested module
// rootfs/binaries/busybox pins them) into one gobusybox binary and returns
// its path and the command names. makebb is built from podboot's module
// (go.mod's tool directive keeps it and its golang.org/x/tools, which works
// with this Go, through go mod tidy); it compiles the commands inside the
// nested module.
func (b *Builder) Busybox(ctx context.Context) (string, []string, error) {
	modDir := filepath.Join(b.RepoRoot, "rootfs", "binaries", "busybox")
	pkgs, err := Commands(filepath.Join(modDir, "commands.go"))
	if err != nil {
		return "", nil, err
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, path.Base(p))
	}
	out := filepath.Join(b.CacheDir, "busybox", "bb")
	key, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return "", nil, fmt.Errorf("build busybox: %w", err)
	}
	stamp := "tags " + busyboxTags + "\n" + strings.Join(pkgs, "\n") + "\n" + string(key)
	if old, err := os.ReadFile(out + ".inputs"); err == nil && string(old) == stamp {
		if _, err := os.Stat(out); err == nil {
			b.printf("cache hit: busybox (gosh + %d commands, %s)", len(pkgs)-1, size(out))
			return out, names, nil
		}
	}
	start := time.Now()
	makebb := filepath.Join(b.CacheDir, "..", "host", "makebb")
	hostEnv := append(os.Environ(), "GOFLAGS=", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if err := b.run(ctx, b.RepoRoot, hostEnv, "go", "build", "-o", makebb, "github.com/u-root/gobusybox/src/cmd/makebb"); err != nil {
		return "", nil, fmt.Errorf("build makebb: %w", err)
	}
	b.printf("building busybox: gosh + %d u-root commands for linux/%s", len(pkgs)-1, b.Arch)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", nil, err
	}
	// goshsmall: gosh's plain line reader. Its default editor (bubbline)
	// draws with escape sequences and waits on terminal replies that a
	// serial console (a Pi's UART, QEMU's PL011) may never send.
	args := append([]string{makebb, "-go-mod=readonly", "-go-build-tags=" + busyboxTags, "-o", out}, pkgs...)
	if err := b.run(ctx, modDir, b.env(false), args...); err != nil {
		return "", nil, fmt.Errorf("build busybox: %w", err)
	}
	if err := os.WriteFile(out+".inputs", []byte(stamp), 0o644); err != nil {
		return "", nil, err
	}
	b.printf("built busybox (%s, %.0fs)", size(out), time.Since(start).Seconds())
	return out, names, nil
}

// Commands lists the package paths imported by the busybox module's
// commands.go.
func Commands(file string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		return nil, fmt.Errorf("read busybox commands: %w", err)
	}
	var pkgs []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, fmt.Errorf("read busybox commands: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("read busybox commands: %s imports nothing", file)
	}
	return pkgs, nil
}

func size(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
}

// LockCache takes the cache directory's lock, waiting (and saying so) while
// another build holds it: concurrent builds (make test runs several) would
// otherwise write the same cached binaries and packages at once.
func LockCache(dir string, out io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		fmt.Fprintf(out, "waiting for another build using the cache %s\n", dir)
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("cache lock %s: %w", f.Name(), err)
		}
	}
	return func() { f.Close() }, nil
}
