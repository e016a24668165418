package volumes

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/agent/runtime"
)

func ptr[T any](v T) *T { return &v }

func podWith(volumes ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Volumes: volumes, Containers: []corev1.Container{{Name: "app"}}}}
}

func TestSetUpEmptyDir(t *testing.T) {
	podDir := filepath.Join(t.TempDir(), "pod")
	pod := podWith(corev1.Volume{Name: "content", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	for range 2 { // idempotent, as kubelet's SetUp
		if err := SetUp(pod, podDir, 0); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "content")
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir %s: mode %v, want a directory 0777 (empty_dir.go defaultPerm)", dir, fi.Mode())
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetUp(pod, podDir, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		t.Errorf("SetUp again lost the volume's content: %v", err)
	}
	if err := Remove(podDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod directory after Remove: %v, want it gone", err)
	}
	if err := Remove(podDir); err != nil {
		t.Errorf("Remove of a removed pod directory: %v", err)
	}
}

// The messages are host_path.go's checkType / typeMatchedOrError and
// mount-utils' getFileType.
func TestSetUpHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name    string
		path    string
		typ     corev1.HostPathType
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "unset: no check", path: missing, typ: corev1.HostPathUnset},
		{name: "Directory", path: dir, typ: corev1.HostPathDirectory},
		{name: "Directory missing", path: missing, typ: corev1.HostPathDirectory,
			wantErr: "hostPath " + missing + " doesn't exist"},
		{name: "Directory is a file", path: file, typ: corev1.HostPathDirectory,
			wantErr: "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{name: "File", path: file, typ: corev1.HostPathFile},
		{name: "File is a directory", path: dir, typ: corev1.HostPathFile,
			wantErr: "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{name: "Socket", path: sock, typ: corev1.HostPathSocket},
		{name: "Socket is a file", path: file, typ: corev1.HostPathSocket,
			wantErr: "hostPath type check failed: " + file + " is not a socket file, it's a File"},
		{name: "CharDevice", path: "/dev/null", typ: corev1.HostPathCharDev},
		{name: "BlockDevice is a char device", path: "/dev/null", typ: corev1.HostPathBlockDev,
			wantErr: "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"},
		{name: "CharDevice is a directory", path: dir, typ: corev1.HostPathCharDev,
			wantErr: "hostPath type check failed: " + dir + " is not a character device, it's a Directory"},
		{name: "DirectoryOrCreate makes parents 0755", path: filepath.Join(dir, "a", "b"), typ: corev1.HostPathDirectoryOrCreate,
			check: func(t *testing.T) { wantMode(t, filepath.Join(dir, "a", "b"), os.ModeDir|0o755) }},
		{name: "DirectoryOrCreate on a file", path: file, typ: corev1.HostPathDirectoryOrCreate,
			wantErr: "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{name: "FileOrCreate makes an empty file 0644", path: filepath.Join(dir, "new"), typ: corev1.HostPathFileOrCreate,
			check: func(t *testing.T) { wantMode(t, filepath.Join(dir, "new"), 0o644) }},
		{name: "FileOrCreate needs the parent", path: filepath.Join(missing, "f"), typ: corev1.HostPathFileOrCreate,
			wantErr: "open " + filepath.Join(missing, "f") + ": no such file or directory"},
		{name: "FileOrCreate on a directory", path: dir, typ: corev1.HostPathFileOrCreate,
			wantErr: "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{name: "backsteps", path: dir + "/../etc", typ: corev1.HostPathUnset,
			wantErr: "invalid HostPath `" + dir + "/../etc`: must not contain '..'"},
		{name: "unknown type", path: dir, typ: "Pipe", wantErr: "Pipe is an invalid volume type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := podWith(corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: tt.path, Type: ptr(tt.typ)}}})
			err := SetUp(pod, filepath.Join(t.TempDir(), "pod"), 0)
			want := ""
			if tt.wantErr != "" {
				want = `MountVolume.SetUp failed for volume "host" : ` + tt.wantErr
			}
			if got := errString(err); got != want {
				t.Errorf("SetUp error:\n got %q\nwant %q", got, want)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

func TestSetUpUnsupported(t *testing.T) {
	tests := []struct {
		src  corev1.VolumeSource
		want string
	}{
		{corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}, `MountVolume.SetUp failed for volume "v" : configMap volumes are not supported by podboot yet`},
		{corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}, `MountVolume.SetUp failed for volume "v" : secret volumes are not supported by podboot yet`},
		{corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: "HugePages-2Mi"}}, `MountVolume.SetUp failed for volume "v" : medium HugePages-2Mi is not supported by podboot yet`},
		{corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: "Tape"}}, `MountVolume.SetUp failed for volume "v" : unknown storage medium "Tape"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := SetUp(podWith(corev1.Volume{Name: "v", VolumeSource: tt.src}), filepath.Join(t.TempDir(), "pod"), 0)
			if got := errString(err); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestTmpfsSize follows empty_dir.go's calculateEmptyDirMemorySize.
func TestTmpfsSize(t *testing.T) {
	const gi = 1 << 30
	limited := func(mem string) corev1.Container {
		q := resource.MustParse(mem)
		return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: q}, Requests: corev1.ResourceList{corev1.ResourceMemory: q}}}
	}
	tests := []struct {
		name        string
		containers  []corev1.Container
		sizeLimit   string
		allocatable int64
		want        int64
	}{
		{name: "node allocatable", containers: []corev1.Container{{Name: "c"}}, allocatable: 4 * gi, want: 4 * gi},
		{name: "pod memory limit under allocatable", containers: []corev1.Container{limited("1Gi")}, allocatable: 4 * gi, want: gi},
		{name: "pod memory limit over allocatable", containers: []corev1.Container{limited("8Gi")}, allocatable: 4 * gi, want: 4 * gi},
		{name: "sizeLimit under the pod limit", containers: []corev1.Container{limited("1Gi")}, sizeLimit: "10Mi", allocatable: 4 * gi, want: 10 << 20},
		{name: "sizeLimit over the pod limit", containers: []corev1.Container{limited("1Gi")}, sizeLimit: "2Gi", allocatable: 4 * gi, want: gi},
		{name: "one container unlimited: no pod limit", containers: []corev1.Container{limited("1Gi"), {Name: "d"}}, allocatable: 4 * gi, want: 4 * gi},
		{name: "allocatable unknown: sizeLimit", containers: []corev1.Container{{Name: "c"}}, sizeLimit: "64Mi", want: 64 << 20},
		{name: "nothing known: kernel default", containers: []corev1.Container{{Name: "c"}}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: tt.containers}}
			src := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
			if tt.sizeLimit != "" {
				src.SizeLimit = ptr(resource.MustParse(tt.sizeLimit))
			}
			if got := tmpfsSize(pod, src, tt.allocatable); got != tt.want {
				t.Errorf("tmpfsSize = %d, want %d", got, tt.want)
			}
		})
	}
}

// Errors are kubelet_pods.go makeMounts'.
func TestContainerMounts(t *testing.T) {
	host := t.TempDir()
	outside := t.TempDir()
	volumes := []corev1.Volume{
		{Name: "content", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: ptr(corev1.HostPathDirectory)}}},
	}
	if err := os.Symlink(outside, filepath.Join(host, "escape")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mounts  []corev1.VolumeMount
		want    func(podDir string) []runtime.Mount
		wantErr string
	}{
		{
			name: "emptyDir and read-only hostPath",
			mounts: []corev1.VolumeMount{
				{Name: "content", MountPath: "/usr/share/nginx/html"},
				{Name: "host", MountPath: "/data", ReadOnly: true, MountPropagation: ptr(corev1.MountPropagationNone)},
			},
			want: func(podDir string) []runtime.Mount {
				return []runtime.Mount{
					{HostPath: filepath.Join(podDir, "volumes/kubernetes.io~empty-dir/content"), ContainerPath: "/usr/share/nginx/html"},
					{HostPath: host, ContainerPath: "/data", ReadOnly: true},
				}
			},
		},
		{
			name:   "relative mountPath made absolute",
			mounts: []corev1.VolumeMount{{Name: "host", MountPath: "data"}},
			want:   func(string) []runtime.Mount { return []runtime.Mount{{HostPath: host, ContainerPath: "/data"}} },
		},
		{
			name:   "subPath made when missing",
			mounts: []corev1.VolumeMount{{Name: "host", MountPath: "/conf", SubPath: "a/b"}},
			want: func(string) []runtime.Mount {
				return []runtime.Mount{{HostPath: filepath.Join(host, "a/b"), ContainerPath: "/conf"}}
			},
		},
		{name: "absolute subPath", mounts: []corev1.VolumeMount{{Name: "host", MountPath: "/c", SubPath: "/etc"}},
			wantErr: "error SubPath `/etc` must not be an absolute path"},
		{name: "subPath backsteps", mounts: []corev1.VolumeMount{{Name: "host", MountPath: "/c", SubPath: "a/../../etc"}},
			wantErr: "unable to provision SubPath `a/../../etc`: must not contain '..'"},
		{name: "subPath through a symlink out of the volume", mounts: []corev1.VolumeMount{{Name: "host", MountPath: "/c", SubPath: "escape"}},
			wantErr: `failed to prepare subPath for volumeMount "host" of container "app"`},
		{name: "unknown volume", mounts: []corev1.VolumeMount{{Name: "nope", MountPath: "/c"}},
			wantErr: `cannot find volume "nope" to mount into container "app"`},
		{name: "HostToContainer propagation", mounts: []corev1.VolumeMount{{Name: "host", MountPath: "/c", MountPropagation: ptr(corev1.MountPropagationHostToContainer)}},
			wantErr: `container "app": volumeMounts[0].mountPropagation HostToContainer is not supported by podboot yet (only None)`},
		{name: "subPathExpr", mounts: []corev1.VolumeMount{{Name: "host", MountPath: "/c", SubPathExpr: "$(POD)"}},
			wantErr: `container "app": volumeMounts[0].subPathExpr is not supported by podboot yet`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			podDir := filepath.Join(t.TempDir(), "pod")
			pod := podWith(volumes...)
			pod.Spec.Containers[0].VolumeMounts = tt.mounts
			if err := SetUp(pod, podDir, 0); err != nil {
				t.Fatal(err)
			}
			got, err := ContainerMounts(pod, &pod.Spec.Containers[0], podDir)
			if errString(err) != tt.wantErr {
				t.Fatalf("error:\n got %q\nwant %q", errString(err), tt.wantErr)
			}
			if tt.want == nil {
				return
			}
			if diff := cmp.Diff(tt.want(podDir), got); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			for _, m := range got {
				if fi, err := os.Stat(m.HostPath); err != nil || !fi.IsDir() {
					t.Errorf("mount source %s: %v, want a directory", m.HostPath, err)
				}
			}
		})
	}
}

func TestSubPathTakesTheVolumesMode(t *testing.T) {
	podDir := filepath.Join(t.TempDir(), "pod")
	pod := podWith(corev1.Volume{Name: "content", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "content", MountPath: "/c", SubPath: "x/y"}}
	if err := SetUp(pod, podDir, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ContainerMounts(pod, &pod.Spec.Containers[0], podDir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"x", "x/y"} {
		wantMode(t, filepath.Join(EmptyDirPath(podDir, "content"), p), os.ModeDir|0o777)
	}
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}
