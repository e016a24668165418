package imagebuild

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standInPrograms are the Go stand-ins StandIns builds into images.
var standInPrograms = []string{"agnhost", "goproxy", "etcd"}

// maxProgramSize bounds a stand-in binary: each is a net/http server, and
// every image that holds one grows by as much.
const maxProgramSize = 9 << 20

func TestBuildProgram(t *testing.T) {
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, name := range standInPrograms {
		for _, arch := range []string{"amd64", "arm64"} {
			t.Run(name+"/"+arch, func(t *testing.T) {
				b, err := buildProgram(name, arch)
				if err != nil {
					t.Fatal(err)
				}
				f, err := elf.NewFile(bytes.NewReader(b))
				if err != nil {
					t.Fatalf("not an ELF binary: %v", err)
				}
				defer f.Close()
				if f.Machine != machines[arch] {
					t.Errorf("machine %v, want %v", f.Machine, machines[arch])
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP {
						t.Errorf("dynamically linked (an interpreter), want static")
					}
				}
				if f.Section(".symtab") != nil {
					t.Errorf("has a symbol table, want stripped (-s -w)")
				}
				if bytes.Contains(b, []byte(os.TempDir()+"/podboot-standin-")) {
					t.Errorf("holds the build directory's path, want -trimpath")
				}
				if len(b) > maxProgramSize {
					t.Errorf("%d bytes, want at most %d", len(b), maxProgramSize)
				}
				t.Logf("%s for %s: %d bytes", name, arch, len(b))
			})
		}
	}
}

// A build is cached: the second one reads the cache's file (here made
// recognisable) instead of running the go command again.
func TestBuildProgramCached(t *testing.T) {
	cache := t.TempDir()
	// A build of older sources, replaced by the new one; another
	// program's build stays.
	for _, n := range []string{"agnhost-linux-amd64-0000000000000000", "etcd-linux-amd64-0000000000000000"} {
		if err := os.WriteFile(filepath.Join(cache, n), []byte("old"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	first, err := cachedBuild("agnhost", "amd64", cache)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "agnhost-*"))
	if len(entries) != 1 || !strings.HasPrefix(filepath.Base(entries[0]), "agnhost-linux-amd64-") || strings.HasSuffix(entries[0], "-0000000000000000") {
		t.Fatalf("cache holds %q, want one agnhost-linux-amd64-<key>, the old build gone", entries)
	}
	if _, err := os.Stat(filepath.Join(cache, "etcd-linux-amd64-0000000000000000")); err != nil {
		t.Errorf("etcd's build went with agnhost's old one: %v", err)
	}
	if got, _ := os.ReadFile(entries[0]); !bytes.Equal(got, first) {
		t.Errorf("cached file differs from the build")
	}
	// Builds are reproducible: this one is the user cache's, built before.
	if usual, err := buildProgram("agnhost", "amd64"); err != nil || !bytes.Equal(usual, first) {
		t.Errorf("two builds of agnhost differ (%d and %d bytes, %v), want the same bytes", len(first), len(usual), err)
	}
	if err := os.WriteFile(entries[0], []byte("from the cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	second, err := cachedBuild("agnhost", "amd64", cache)
	if err != nil || string(second) != "from the cache" {
		t.Errorf("second build = %d bytes, %v; want the cache's file", len(second), err)
	}
	// Another architecture is another build.
	if other, err := cachedBuild("agnhost", "arm64", cache); err != nil || string(other) == "from the cache" {
		t.Errorf("arm64 build = %d bytes, %v; want its own build", len(other), err)
	}
}

func TestBuildProgramErrors(t *testing.T) {
	bb := testBusybox(t)
	tests := []struct {
		name string
		file File
		want string
	}{
		{"unknown program", File{Path: "/x", Mode: 0o755, Program: "nope"}, `no stand-in program "nope"`},
		{"program and data", File{Path: "/x", Mode: 0o755, Program: "agnhost", Data: []byte("x")}, `file "/x": a program is a regular file without data`},
		{"program as a directory", File{Path: "/x", Mode: fs.ModeDir | 0o755, Program: "agnhost"}, `file "/x": a program is a regular file without data`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(Spec{Tags: []string{"t:1"}, Arch: hostArch(t), Busybox: bb, Files: []File{tt.file}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `build image "t:1"`) {
				t.Errorf("Build() error = %v, want one naming the image and containing %q", err, tt.want)
			}
		})
	}
	t.Run("no go command", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := buildProgram("agnhost", "amd64")
		if err == nil || !strings.Contains(err.Error(), "build stand-in program agnhost for linux/amd64: the go command is needed") {
			t.Errorf("buildProgram() without go = %v, want it to say the go command is needed", err)
		}
	})
}

func TestProgramDigest(t *testing.T) {
	seen := map[string]string{}
	for _, name := range standInPrograms {
		d, err := ProgramDigest(name)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := ProgramDigest(name)
		if len(d) != 64 || d != again {
			t.Errorf("ProgramDigest(%q) = %q then %q, want one sha256", name, d, again)
		}
		if prev, ok := seen[d]; ok {
			t.Errorf("%s and %s have the same digest", prev, name)
		}
		seen[d] = name
	}
	if _, err := ProgramDigest("nope"); err == nil {
		t.Errorf(`ProgramDigest("nope") = nil error, want one`)
	}
}
