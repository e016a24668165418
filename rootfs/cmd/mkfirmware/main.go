// Command mkfirmware builds podboot's firmware for one board (what make
// image runs), or the arm64 stand-in images the examples use.
//
//	mkfirmware -board qemu-arm64 -pods DIR -images DIR [-device FILE] -out out/qemu-arm64
//	mkfirmware example-images -arch arm64 [-only busybox,nginx] -out DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/podboot/podboot/boards"
	"github.com/podboot/podboot/rootfs/deb"
	"github.com/podboot/podboot/rootfs/firmware"
	"github.com/podboot/podboot/tools/imagebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "example-images" {
		err = exampleImages(ctx, os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = build(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "mkfirmware:", err)
		os.Exit(1)
	}
}

func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return firmware.RepoRoot(wd)
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg firmware.Config
	fs := flag.NewFlagSet("mkfirmware", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Board, "board", "qemu-arm64", "board: "+strings.Join(boards.Names(), ", "))
	fs.StringVar(&cfg.Pods, "pods", "", "directory of Pod manifests for the flash's pods/")
	fs.StringVar(&cfg.Images, "images", "", "directory of OCI or docker archives for the flash's images/")
	fs.StringVar(&cfg.Device, "device", "", "device.yaml for the flash (hostname, network, clock, api)")
	fs.StringVar(&cfg.Out, "out", "", "output directory (default out/BOARD)")
	fs.StringVar(&cfg.APIServer, "server", "", "the kubeconfig's server URL (default: the board's)")
	fs.StringVar(&cfg.CacheDir, "cache", "", "cache of packages, binaries and credentials (default .cache in the repository)")
	freeMiB := fs.Int64("flash-free-mib", 256, "free space on the flash partition beyond its content, MiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags come first; see -h)", fs.Args())
	}
	if !slices.Contains(boards.Names(), cfg.Board) {
		return fmt.Errorf("-board %q: unknown board; the boards are %s", cfg.Board, strings.Join(boards.Names(), ", "))
	}
	if *freeMiB < 0 {
		return fmt.Errorf("-flash-free-mib %d: must not be negative", *freeMiB)
	}
	cfg.FlashFree = *freeMiB << 20
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cfg.RepoRoot = root
	if cfg.Out == "" {
		cfg.Out = filepath.Join(root, "out", cfg.Board)
	}
	if cfg.Epoch, err = firmware.Epoch(root, os.Getenv); err != nil {
		return err
	}
	cfg.Stdout = stdout
	return firmware.Build(ctx, cfg)
}

// exampleImages writes the stand-in images (busybox-based look-alikes of
// the images Kubernetes examples name) for arch, built from Debian's pinned
// busybox-static for that architecture.
func exampleImages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkfirmware example-images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	archName := fs.String("arch", "arm64", "image architecture (Debian's name)")
	out := fs.String("out", "", "output directory (required)")
	only := fs.String("only", "", "comma-separated repositories to write (e.g. busybox,nginx); default all")
	cache := fs.String("cache", "", "package cache (default .cache in the repository)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("usage: mkfirmware example-images -arch arm64 [-only busybox,nginx] -out DIR")
	}
	arch, err := boards.LoadArch(*archName)
	if err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if *cache == "" {
		*cache = filepath.Join(root, ".cache")
	}
	printf := func(format string, a ...any) { fmt.Fprintf(stdout, "      %s\n", fmt.Sprintf(format, a...)) }
	f := &deb.Fetcher{CacheDir: filepath.Join(*cache, "debs"), AptDir: filepath.Join(*cache, "apt"), Arch: arch.Arch, Printf: printf}
	p := arch.BusyboxStatic
	fmt.Fprintf(stdout, "stand-in images for linux/%s from %s=%s -> %s\n", arch.Arch, p.Name, p.Version, *out)
	path, err := f.Fetch(ctx, p)
	if err != nil {
		return err
	}
	dir := filepath.Join(*cache, arch.Arch, "extract", strings.TrimSuffix(filepath.Base(path), ".deb"))
	if _, err := deb.Extract(ctx, path, dir); err != nil {
		return err
	}
	busybox := filepath.Join(dir, "bin", "busybox")
	specs, err := selectSpecs(imagebuild.StandIns(arch.Arch, busybox), *only)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, err := imagebuild.Build(s)
		if err != nil {
			return err
		}
		imgs := make(map[string]v1.Image, len(s.Tags))
		for _, t := range s.Tags {
			imgs[t] = img
		}
		name := filepath.Join(*out, archiveName(s.Tags[0]))
		if err := imagebuild.WriteOCIArchive(name, imgs); err != nil {
			return err
		}
		printf("%s: %s", filepath.Base(name), strings.Join(s.Tags, " "))
	}
	return nil
}

// selectSpecs keeps the stand-ins whose repository (the first tag without
// its tag) is in the comma-separated list; an empty list keeps all.
func selectSpecs(specs []imagebuild.Spec, only string) ([]imagebuild.Spec, error) {
	if only == "" {
		return specs, nil
	}
	var kept []imagebuild.Spec
	var known []string
	for _, want := range strings.Split(only, ",") {
		found := false
		for _, s := range specs {
			repo, _, _ := strings.Cut(s.Tags[0], ":")
			known = append(known, repo)
			if repo == strings.TrimSpace(want) {
				kept = append(kept, s)
				found = true
			}
		}
		if !found {
			slices.Sort(known)
			return nil, fmt.Errorf("-only %s: no stand-in image; there are %s", want, strings.Join(slices.Compact(known), ", "))
		}
	}
	return kept, nil
}

// archiveName is the file name for an image: "registry.k8s.io/busybox:1.27.2"
// is registry.k8s.io_busybox_1.27.2.tar, as mkimage names them.
func archiveName(tag string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(tag) + ".tar"
}
