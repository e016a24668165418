package imagebuild

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the timestamp of every file and of the image config, so that a
// build is reproducible.
var Epoch = time.Unix(0, 0).UTC()

// DefaultPath is the PATH of the busybox image.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec describes one image.
type Spec struct {
	// Tags name the image, e.g. "busybox:1.36" or "registry.k8s.io/busybox".
	Tags []string
	// Arch is the image's architecture: amd64 or arm64.
	Arch string
	// Busybox is the path of a static busybox binary for Arch.
	Busybox string
	// Applets get a symlink each in /bin. Empty: the binary's own list
	// (busybox --list) when it runs on this machine, else DefaultApplets.
	Applets []string

	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	StopSignal   string
	ExposedPorts []string // "80/tcp"; a bare port means tcp
	Files        []File
}

// File is an extra file (or directory, when Mode has fs.ModeDir) of the
// image. Parent directories are created as needed.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
	// Program, instead of Data, names a Go stand-in of this package's
	// standins/ directory (e.g. "agnhost"): Build compiles it for the
	// image's Arch, static and stripped, and caches the binary.
	Program string `json:",omitempty"`
}

// DefaultApplets are linked when the busybox binary cannot run here (an
// arm64 binary on an amd64 host): the applets of Debian's busybox-static.
var DefaultApplets = []string{
	"[", "[[", "ash", "awk", "base64", "basename", "cat", "chgrp", "chmod", "chown",
	"cmp", "cp", "cut", "date", "dd", "df", "diff", "dirname", "dmesg", "du", "echo",
	"egrep", "env", "expr", "false", "fgrep", "find", "free", "grep", "groups",
	"gunzip", "gzip", "head", "hostname", "httpd", "id", "ip", "kill", "killall",
	"less", "ln", "ls", "md5sum", "mkdir", "mkfifo", "mktemp", "more", "mount", "mv",
	"nc", "netstat", "nproc", "nslookup", "od", "pidof", "ping", "printf", "ps",
	"pwd", "readlink", "realpath", "rm", "rmdir", "sed", "seq", "sh", "sha256sum",
	"sleep", "sort", "stat", "sync", "tail", "tar", "tee", "test", "timeout",
	"top", "touch", "tr", "true", "umount", "uname", "uniq", "uptime", "usleep",
	"vi", "watch", "wc", "wget", "which", "whoami", "xargs", "yes", "zcat",
}

// elfMachines maps the supported architectures to their ELF machine.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// Build builds the image: /bin/busybox with a symlink per applet, /etc/passwd
// and /etc/group with root and nobody (65534), /tmp (1777), the spec's files,
// and the spec's config.
func Build(s Spec) (v1.Image, error) {
	name := s.Busybox
	if len(s.Tags) > 0 {
		name = s.Tags[0]
	}
	img, err := build(s)
	if err != nil {
		return nil, fmt.Errorf("build image %q: %w", name, err)
	}
	return img, nil
}

func build(s Spec) (v1.Image, error) {
	if _, ok := elfMachines[s.Arch]; !ok {
		return nil, fmt.Errorf("unsupported architecture %q (want amd64 or arm64)", s.Arch)
	}
	bin, err := readBusybox(s.Busybox, s.Arch)
	if err != nil {
		return nil, err
	}
	applets := s.Applets
	if len(applets) == 0 {
		applets = listApplets(s.Busybox)
	}
	ports, err := exposedPorts(s.ExposedPorts)
	if err != nil {
		return nil, err
	}
	files := baseFiles(bin, applets)
	// The busybox images on Docker Hub have printenv; Debian's static
	// busybox does not build that applet, and the Kubernetes docs'
	// examples use it.
	if !slices.Contains(applets, "printenv") && !hasFile(s.Files, "/usr/bin/printenv") {
		files = append(files, entry{path: "/usr/bin/printenv", mode: 0o755, data: mustScript("printenv")})
	}
	for _, f := range s.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("file path %q: must be absolute and clean", f.Path)
		}
		data := f.Data
		if f.Program != "" {
			if len(f.Data) > 0 || !f.Mode.IsRegular() {
				return nil, fmt.Errorf("file %q: a program is a regular file without data", f.Path)
			}
			if data, err = buildProgram(f.Program, s.Arch); err != nil {
				return nil, err
			}
		}
		files = append(files, entry{path: f.Path, mode: f.Mode, data: data})
	}
	layer, err := newLayer(files)
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "podboot imagebuild", Comment: "busybox"},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = s.Arch
	if s.Arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.OS = "linux"
	cf.Created = v1.Time{Time: Epoch}
	env := s.Env
	if len(env) == 0 {
		env = []string{DefaultPath}
	}
	cf.Config = v1.Config{
		Entrypoint:   s.Entrypoint,
		Cmd:          s.Cmd,
		Env:          env,
		WorkingDir:   s.WorkingDir,
		User:         s.User,
		StopSignal:   s.StopSignal,
		ExposedPorts: ports,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// readBusybox reads the binary and checks that it is a static executable for
// arch: a dynamic one would not run in an image without a libc.
func readBusybox(p, arch string) ([]byte, error) {
	if p == "" {
		return nil, fmt.Errorf("no busybox binary given")
	}
	f, err := elf.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read busybox %q: %w", p, err)
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		return nil, fmt.Errorf("busybox %q is for %v, not %s", p, f.Machine, arch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("busybox %q is dynamically linked; a static binary is needed", p)
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read busybox %q: %w", p, err)
	}
	return b, nil
}

// listApplets asks the binary for its applets; a binary for another
// architecture cannot answer, and gets DefaultApplets.
func listApplets(busybox string) []string {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return DefaultApplets
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 {
		return DefaultApplets
	}
	return applets
}

func exposedPorts(ports []string) (map[string]struct{}, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	m := make(map[string]struct{}, len(ports))
	for _, p := range ports {
		num, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		var n int
		if _, err := fmt.Sscanf(num, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != num {
			return nil, fmt.Errorf("exposed port %q: not a port number", p)
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("exposed port %q: protocol must be tcp, udp or sctp", p)
		}
		m[num+"/"+proto] = struct{}{}
	}
	return m, nil
}

func hasFile(files []File, p string) bool {
	for _, f := range files {
		if f.Path == p {
			return true
		}
	}
	return false
}
