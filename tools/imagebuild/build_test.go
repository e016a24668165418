package imagebuild

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/podboot/podboot/internal/integration"
)

// testBusybox is a static busybox for the host, or the test is skipped.
func testBusybox(t *testing.T) string {
	t.Helper()
	const p = "/bin/busybox"
	if _, err := os.Stat(p); err != nil {
		integration.Unavailable(t, "no %s (apt-get install busybox-static): %v", p, err)
	}
	return p
}

func hostArch(t *testing.T) string {
	if goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64" {
		t.Skipf("host architecture %s has no image support", goruntime.GOARCH)
	}
	return goruntime.GOARCH
}

// layerFiles reads the image's single layer: path → tar entry (symlinks as
// "-> target", files with their mode and content).
type layerFile struct {
	Mode   int64
	Type   byte
	Target string
	Data   string
}

func layerFiles(t *testing.T, img v1.Image) map[string]layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("Layers() = %d layers, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(Epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("entry %q: mtime %v uid %d gid %d, want epoch and root", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		f := layerFile{Mode: h.Mode, Type: h.Typeflag, Target: h.Linkname}
		if h.Typeflag == tar.TypeReg && h.Size < 4096 {
			b, _ := io.ReadAll(tr)
			f.Data = string(b)
		}
		files[h.Name] = f
	}
	return files
}

func TestBuildConfig(t *testing.T) {
	bb := testBusybox(t)
	arch := hostArch(t)
	tests := []struct {
		name string
		spec Spec
		want v1.Config
	}{
		{
			name: "defaults",
			spec: Spec{Tags: []string{"x:1"}},
			want: v1.Config{Env: []string{DefaultPath}},
		},
		{
			name: "everything",
			spec: Spec{
				Tags: []string{"app:1"}, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"},
				Env: []string{"PATH=/bin", "A=b"}, WorkingDir: "/srv", User: "65534:65534",
				StopSignal: "SIGQUIT", ExposedPorts: []string{"80", "53/udp"},
			},
			want: v1.Config{
				Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"},
				Env: []string{"PATH=/bin", "A=b"}, WorkingDir: "/srv", User: "65534:65534",
				StopSignal: "SIGQUIT", ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Arch, tt.spec.Busybox = arch, bb
			img, err := Build(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cf.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if cf.Architecture != arch || cf.OS != "linux" || !cf.Created.Equal(Epoch) {
				t.Errorf("platform %s/%s created %v, want linux/%s at epoch", cf.OS, cf.Architecture, cf.Created, arch)
			}
			mt, _ := img.MediaType()
			m, _ := img.Manifest()
			if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("media types %s, %s, %s; want OCI", mt, m.Config.MediaType, m.Layers[0].MediaType)
			}
		})
	}
}

func TestBuildLayer(t *testing.T) {
	bb := testBusybox(t)
	img, err := Build(Spec{
		Arch: hostArch(t), Busybox: bb, Applets: []string{"sh", "sleep"},
		Files: []File{
			{Path: "/usr/share/app/index.html", Mode: 0o644, Data: []byte("hello")},
			{Path: "/data", Mode: fs.ModeDir | 0o700},
			{Path: "/etc/passwd", Mode: 0o600, Data: []byte("root:x:0:0::/:/bin/sh\n")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := layerFiles(t, img)
	bin, _ := os.ReadFile(bb)
	if len(bin) >= 4096 {
		if f := got["bin/busybox"]; f.Type != tar.TypeReg || f.Mode != 0o755 {
			t.Errorf("bin/busybox = %+v, want an executable file", f)
		}
		delete(got, "bin/busybox")
	}
	want := map[string]layerFile{
		"bin/":                     {Mode: 0o755, Type: tar.TypeDir},
		"bin/sh":                   {Mode: 0o777, Type: tar.TypeSymlink, Target: "busybox"},
		"bin/sleep":                {Mode: 0o777, Type: tar.TypeSymlink, Target: "busybox"},
		"data/":                    {Mode: 0o700, Type: tar.TypeDir},
		"dev/":                     {Mode: 0o755, Type: tar.TypeDir},
		"etc/":                     {Mode: 0o755, Type: tar.TypeDir},
		"etc/group":                {Mode: 0o644, Type: tar.TypeReg, Data: group},
		"etc/passwd":               {Mode: 0o600, Type: tar.TypeReg, Data: "root:x:0:0::/:/bin/sh\n"},
		"home/":                    {Mode: 0o755, Type: tar.TypeDir},
		"proc/":                    {Mode: 0o755, Type: tar.TypeDir},
		"root/":                    {Mode: 0o700, Type: tar.TypeDir},
		"sbin/":                    {Mode: 0o755, Type: tar.TypeDir},
		"sys/":                     {Mode: 0o755, Type: tar.TypeDir},
		"tmp/":                     {Mode: 0o1777, Type: tar.TypeDir},
		"usr/":                     {Mode: 0o755, Type: tar.TypeDir},
		"usr/bin/":                 {Mode: 0o755, Type: tar.TypeDir},
		"usr/bin/printenv":         {Mode: 0o755, Type: tar.TypeReg, Data: string(mustScript("printenv"))},
		"usr/local/":               {Mode: 0o755, Type: tar.TypeDir},
		"usr/local/bin/":           {Mode: 0o755, Type: tar.TypeDir},
		"usr/sbin/":                {Mode: 0o755, Type: tar.TypeDir},
		"usr/share/":               {Mode: 0o755, Type: tar.TypeDir},
		"usr/share/app/":           {Mode: 0o755, Type: tar.TypeDir},
		"usr/share/app/index.html": {Mode: 0o644, Type: tar.TypeReg, Data: "hello"},
		"var/":                     {Mode: 0o755, Type: tar.TypeDir},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
}

func TestBuildDefaultUsers(t *testing.T) {
	img, err := Build(Spec{Arch: hostArch(t), Busybox: testBusybox(t)})
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, img)
	if diff := cmp.Diff(passwd, files["etc/passwd"].Data); diff != "" {
		t.Errorf("/etc/passwd (-want +got):\n%s", diff)
	}
	for _, applet := range []string{"sh", "sleep", "httpd", "nc", "wget"} {
		if files["bin/"+applet].Target != "busybox" {
			t.Errorf("no /bin/%s applet link", applet)
		}
	}
}

func TestBuildReproducible(t *testing.T) {
	bb, arch := testBusybox(t), hostArch(t)
	dir := t.TempDir()
	var digests, archives []string
	for i := range 2 {
		var imgs = map[string]v1.Image{}
		for _, s := range StandIns(arch, bb)[:3] {
			img, err := Build(s)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			digests = append(digests, d.String())
			for _, tag := range s.Tags {
				imgs[tag] = img
			}
		}
		for _, w := range []struct {
			name  string
			write func(string, map[string]v1.Image) error
		}{{"docker", WriteDockerArchive}, {"oci", WriteOCIArchive}} {
			p := filepath.Join(dir, w.name+string(rune('0'+i))+".tar")
			if err := w.write(p, imgs); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			archives = append(archives, string(b))
		}
	}
	if diff := cmp.Diff(digests[:3], digests[3:]); diff != "" {
		t.Errorf("image digests differ between builds (-first +second):\n%s", diff)
	}
	if archives[0] != archives[2] || archives[1] != archives[3] {
		t.Errorf("archives differ between builds")
	}
}

func TestBuildErrors(t *testing.T) {
	bb := testBusybox(t)
	dynamic := "/bin/ls" // any dynamically linked executable
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[hostArch(t)]
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"bad arch", Spec{Arch: "mips", Busybox: bb}, `unsupported architecture "mips"`},
		{"no busybox", Spec{Arch: hostArch(t)}, "no busybox binary given"},
		{"missing busybox", Spec{Arch: hostArch(t), Busybox: "/nonexistent"}, `read busybox "/nonexistent"`},
		{"not elf", Spec{Arch: hostArch(t), Busybox: "/etc/passwd"}, `read busybox "/etc/passwd"`},
		{"dynamic", Spec{Arch: hostArch(t), Busybox: dynamic}, "dynamically linked"},
		{"wrong arch", Spec{Arch: other, Busybox: bb}, "not " + other},
		{"bad port", Spec{Arch: hostArch(t), Busybox: bb, ExposedPorts: []string{"http"}}, `exposed port "http"`},
		{"bad proto", Spec{Arch: hostArch(t), Busybox: bb, ExposedPorts: []string{"80/xyz"}}, `exposed port "80/xyz"`},
		{"relative file", Spec{Arch: hostArch(t), Busybox: bb, Files: []File{{Path: "etc/x"}}}, `file path "etc/x"`},
		{"unclean file", Spec{Arch: hostArch(t), Busybox: bb, Files: []File{{Path: "/etc/../x"}}}, `file path "/etc/../x"`},
		{"file under file", Spec{Arch: hostArch(t), Busybox: bb, Files: []File{{Path: "/etc/passwd/x", Mode: 0o644}}}, `parent "/etc/passwd" is not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Tags = []string{"t:1"}
			_, err := Build(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `build image "t:1"`) {
				t.Errorf("Build() error = %v, want one naming the image and containing %q", err, tt.want)
			}
		})
	}
}

func TestStandInScriptsParse(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		integration.Unavailable(t, "no /bin/busybox (apt-get install busybox-static)")
	}
	for _, s := range StandIns(hostArch(t), "/bin/busybox") {
		for _, f := range s.Files {
			if !bytes.HasPrefix(f.Data, []byte("#!/bin/sh")) && !strings.HasSuffix(f.Path, ".sh") {
				continue
			}
			p := filepath.Join(t.TempDir(), "script")
			if err := os.WriteFile(p, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := runCmd("/bin/busybox", "sh", "-n", p); err != nil {
				t.Errorf("%s %s: syntax: %v\n%s", s.Tags[0], f.Path, err, out)
			}
		}
	}
}
