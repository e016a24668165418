// Command mkimage writes local images built from a static busybox: the
// stand-ins for the images the Kubernetes examples use (one docker archive
// each), or one image described by flags.
//
//	mkimage -arch amd64 -busybox /bin/busybox -o DIR              # stand-ins
//	mkimage -o DIR -tag app:1 -entrypoint '["/bin/sh","-c"]' -cmd 'echo hi'
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/podboot/podboot/tools/imagebuild"
)

// Config is mkimage's command line.
type Config struct {
	Arch, Busybox, OutDir, Format string
	StandIns                      bool
	Spec                          imagebuild.Spec // with -tag
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(2)
	}
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		log.Error("mkimage failed", "err", err)
		os.Exit(1)
	}
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// argvFlag is a command line: a JSON array, or words split at spaces.
type argvFlag []string

func (a *argvFlag) String() string { return strings.Join(*a, " ") }
func (a *argvFlag) Set(v string) error {
	if strings.HasPrefix(strings.TrimSpace(v), "[") {
		var argv []string
		if err := json.Unmarshal([]byte(v), &argv); err != nil {
			return fmt.Errorf("not a JSON array of strings: %w", err)
		}
		*a = argv
		return nil
	}
	*a = strings.Fields(v)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	var tags, env, ports listFlag
	var entrypoint, cmd argvFlag
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Arch, "arch", goruntime.GOARCH, "image architecture: amd64 or arm64")
	fs.StringVar(&cfg.Busybox, "busybox", "/bin/busybox", "static busybox binary for -arch")
	fs.StringVar(&cfg.OutDir, "o", "", "output directory (required)")
	fs.StringVar(&cfg.Format, "format", "docker", "archive format: docker or oci")
	fs.BoolVar(&cfg.StandIns, "standins", false, "write every stand-in image (the default without -tag)")
	fs.Var(&tags, "tag", "image name, e.g. app:1 (repeatable); builds one image from the flags below")
	fs.Var(&entrypoint, "entrypoint", `ENTRYPOINT: JSON array or space-separated words`)
	fs.Var(&cmd, "cmd", `CMD: JSON array or space-separated words`)
	fs.Var(&env, "env", "NAME=VALUE (repeatable; default PATH only)")
	fs.StringVar(&cfg.Spec.WorkingDir, "workdir", "", "WORKDIR")
	fs.StringVar(&cfg.Spec.User, "user", "", "USER")
	fs.StringVar(&cfg.Spec.StopSignal, "stop-signal", "", "STOPSIGNAL, e.g. SIGQUIT")
	fs.Var(&ports, "port", "EXPOSE, e.g. 80/tcp (repeatable)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.OutDir == "" {
		return Config{}, fmt.Errorf("-o DIR is required")
	}
	if cfg.Format != "docker" && cfg.Format != "oci" {
		return Config{}, fmt.Errorf("-format %q: want docker or oci", cfg.Format)
	}
	if len(tags) == 0 {
		cfg.StandIns = true
	} else if cfg.StandIns {
		return Config{}, fmt.Errorf("-standins and -tag exclude each other")
	}
	cfg.Spec.Tags, cfg.Spec.Env, cfg.Spec.ExposedPorts = tags, env, ports
	cfg.Spec.Entrypoint, cfg.Spec.Cmd = entrypoint, cmd
	cfg.Spec.Arch, cfg.Spec.Busybox = cfg.Arch, cfg.Busybox
	return cfg, nil
}

func run(ctx context.Context, cfg Config, stdout io.Writer) error {
	specs := []imagebuild.Spec{cfg.Spec}
	if cfg.StandIns {
		specs = imagebuild.StandIns(cfg.Arch, cfg.Busybox)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	for _, s := range specs {
		if err := ctx.Err(); err != nil {
			return err
		}
		path, err := writeSpec(cfg, s)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\n", path, strings.Join(s.Tags, " "))
	}
	return nil
}

func writeSpec(cfg Config, s imagebuild.Spec) (string, error) {
	img, err := imagebuild.Build(s)
	if err != nil {
		return "", err
	}
	imgs := make(map[string]v1.Image, len(s.Tags))
	for _, t := range s.Tags {
		imgs[t] = img
	}
	path := filepath.Join(cfg.OutDir, ArchiveName(s.Tags[0]))
	if cfg.Format == "oci" {
		return path, imagebuild.WriteOCIArchive(path, imgs)
	}
	return path, imagebuild.WriteDockerArchive(path, imgs)
}

// ArchiveName is the file name for an image: "registry.k8s.io/busybox:1.27.2"
// is registry.k8s.io_busybox_1.27.2.tar.
func ArchiveName(tag string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(tag) + ".tar"
}
